"""Supervised fine-tuning (SFT): the LoRA learns the filtered pairs by flow matching (paper Eq. 4, Table 2
'SFT'; appendix C.2 / Table 8: batch 8, 2 epochs).

Each training pair is (reference photo, target photo of the same subject, the target's prompt). The policy
sees what it sees when it generates, ``cond = encode_condition(policy, prompt, reference, resolution)``, and
regresses the velocity that carries noise to the target's latents. Step s (0-based) of a run with seed S:

1. takes the B = ``sft.batch_size`` pairs ``step_pairs(n, B, S, s)`` of the training list, this rank's
   share of them in a data-parallel run (:func:`~cgrpo_core.training.data.shard`);
2. for the pair at place k of the step, from a generator seeded by ``derive_seed(S, "sft", s, k)``, draws
   the noise (as the sampler draws its start: ``[1, C, H, W]``, packed) and ``u ~ U(0, 1)``, and computes::

       x0      = the target's VAE latents (posterior mean, (z - shift_factor) * scaling_factor), packed
       sigma   = shift * u / (1 + (shift - 1) * u)              (shift = sampler.shift)
       x_sigma = (1 - sigma) * x0 + sigma * noise               (Eq. 3)
       loss_k  = mean |v_theta(x_sigma, sigma, cond) - (noise - x0)|^2      (Eq. 4)

3. minimises the mean of ``loss_k`` over the share: each pair's loss is back-propagated on its own
   (divided by the share's size, so the gradients add up to that of the mean), the gradients are averaged
   over the ranks, clipped to ``sft.max_grad_norm`` and applied by AdamW (``sft.learning_rate``, linear
   warm-up over ``sft.warmup_steps`` steps, then constant).

**Noise levels.** ``sigma = shift(u)`` with u uniform is the density of the noise levels the sampler
visits: ``shifted_sigmas`` places its T steps at ``shift(t)`` for t on a uniform grid, so training spends
its updates where sampling spends its steps (UNO: a uniform index into its shifted schedule; the toy base
policy's ``shifted_uniform``). The guidance embedding gets ``sampler.guidance``, the value it sees when
sampling.

**Targets** are prepared as references are (:func:`~cgrpo_core.policy.images.reference_tensor`: long side to
the sampler resolution, centre-crop to whole tokens) and encoded in float32. A target must come out square
(the generated image is): SynCD's are; another shape is an error naming the pair.

Every random number comes from a generator seeded by (S, s, place), never a global RNG, so a step depends
only on the LoRA and optimiser state it starts from (what makes :func:`~cgrpo_core.training.loop.train`'s
resume bit-identical). :mod:`cgrpo_core.training.rpo` reuses these pieces: its similarity loss is this loss.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from cgrpo_core.flow_matching import add_noise
from cgrpo_core.losses import flow_matching_loss
from cgrpo_core.policy.conditioning import Condition, encode_condition
from cgrpo_core.policy.config import SamplerConfig
from cgrpo_core.policy.images import ImageLike, reference_tensor
from cgrpo_core.policy.latents import pack_latents
from cgrpo_core.policy.loading import Policy
from cgrpo_core.policy.sampling import initial_noise, velocity
from cgrpo_core.training.config import SFTConfig
from cgrpo_core.training.data import TrainPair, derive_seed, shard, step_pairs
from cgrpo_core.training.distributed import SINGLE_PROCESS, Dist
from cgrpo_core.training.optim import adamw

__all__ = [
    "SFTTrainer",
    "apply_update",
    "check_pairs",
    "draw_noise",
    "image_latents",
    "linear_warmup",
    "sft_loss",
    "sft_steps",
    "target_latents",
    "time_shift",
]


def sft_steps(num_pairs: int, sft: SFTConfig) -> int:
    """Optimiser steps of an SFT run: ``epochs * ceil(num_pairs / batch_size)``, at most ``max_steps``."""
    if num_pairs < 1:
        raise ValueError("the training list is empty: run prepare-syncd first (or loosen data.filter)")
    steps = sft.epochs * math.ceil(num_pairs / sft.batch_size)
    return steps if sft.max_steps is None else min(steps, sft.max_steps)


def check_pairs(
    pairs: Sequence[TrainPair], per_step: int, dist: Dist, method: str, need_target: bool
) -> None:
    """A ValueError for an empty training list, a pair without a target photo when ``need_target``, or a
    step's pairs that do not split evenly over the processes."""
    if not pairs:
        raise ValueError(
            f"{method}: the training list is empty: run prepare-syncd first (or loosen data.filter)"
        )
    if need_target:
        missing = [p for p in pairs if p.target is None]
        if missing:
            first = missing[0]
            raise ValueError(
                f"{method} trains on each pair's target photo, but {len(missing)} pair(s) have none, e.g. "
                f"pair {first.index} (reference {first.reference}, prompt {first.prompt!r}): give every "
                "record of the training list an 'img'"
            )
    if per_step % dist.world:
        raise ValueError(
            f"{method}: {per_step} pairs per step cannot be split evenly over {dist.world} processes: make "
            "the batch size a multiple of the number of processes"
        )


def time_shift(u: Tensor, shift: float) -> Tensor:
    """``shift * u / (1 + (shift - 1) * u)``: the sampler's time shift (flow_matching.shifted_sigmas)."""
    return shift * u / (1.0 + (shift - 1.0) * u)


def linear_warmup(warmup: int) -> Callable[[int], float]:
    """Learning-rate factor: ``(k + 1) / warmup`` for the first ``warmup`` steps, then 1 (0: constant)."""
    return lambda step: min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0


@torch.no_grad()
def image_latents(policy: Policy, image: ImageLike, resolution: int) -> Tensor:
    """A photo's packed latent tokens ``[1, N, D]`` float32: prepared like a reference at ``resolution``,
    VAE posterior mean, ``(z - shift_factor) * scaling_factor`` (as conditioning.encode_references)."""
    vae = policy.vae
    pixels = reference_tensor(image, resolution, policy.pixel_multiple)  # (1, 3, H, W)
    latent = vae.encode(pixels.to(device=vae.device, dtype=vae.dtype)).latent_dist.mode().float()
    latent = (latent - vae.config.shift_factor) * vae.config.scaling_factor  # (1, C, H/f, W/f)
    return pack_latents(latent).to(policy.device)  # (1, N, 4C)


def target_latents(policy: Policy, pair: TrainPair, cond: Condition) -> Tensor:
    """The pair's target photo as the clean sample ``x0`` ``[1, N, D]`` of ``cond``'s target grid."""
    if pair.target is None:
        raise ValueError(f"pair {pair.index} (reference {pair.reference}) has no target photo")
    x0 = image_latents(policy, pair.target, cond.resolution)
    if x0.shape[1] != cond.num_tokens:
        raise ValueError(
            f"pair {pair.index}: target {pair.target} gives {x0.shape[1]} latent tokens at "
            f"{cond.resolution} px, the generated image has {cond.num_tokens} ({cond.grid}x{cond.grid}): "
            "the target must be square; crop it first"
        )
    return x0


def draw_noise(
    policy: Policy, cond: Condition, shift: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """``(noise [1, N, D], sigma [1])`` from ``generator``: the noise drawn as the sampler draws its start,
    then ``sigma = time_shift(u, shift)`` with ``u ~ U(0, 1)`` (module docstring)."""
    noise = initial_noise(policy, cond, 1, generator)  # (1, N, D)
    sigma = time_shift(torch.rand(1, generator=generator, dtype=torch.float64), shift).float()
    return noise, sigma.to(policy.device)


def sft_loss(policy: Policy, pair: TrainPair, sampler: SamplerConfig, generator: torch.Generator) -> Tensor:
    """One pair's flow-matching loss (Eq. 4; module docstring), a scalar with gradient through the LoRA."""
    cond = encode_condition(policy, pair.prompt, pair.reference, sampler.resolution)
    x0 = target_latents(policy, pair, cond)
    noise, sigma = draw_noise(policy, cond, sampler.shift, generator)
    pred = velocity(policy, cond, add_noise(x0, noise, sigma), sigma, sampler.guidance)  # (1, N, D)
    return flow_matching_loss(pred, x0, noise)


def apply_update(
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    params: Sequence[torch.nn.Parameter],
    max_grad_norm: float,
    dist: Dist,
) -> float:
    """Average the accumulated gradients over the ranks, clip them to ``max_grad_norm``, step the optimiser
    and the schedule; returns the gradient norm before clipping."""
    dist.all_reduce_grads(params)
    norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    if not torch.isfinite(norm):
        raise FloatingPointError(f"the gradient norm is not finite ({float(norm)})")
    optimizer.step()
    scheduler.step()
    return float(norm)


class SFTTrainer:
    """SFT on a training list (module docstring); a :class:`~cgrpo_core.training.loop.Trainer`."""

    def __init__(
        self,
        policy: Policy,
        pairs: Sequence[TrainPair],
        sft: SFTConfig,
        sampler: SamplerConfig,
        seed: int,
        dist: Dist = SINGLE_PROCESS,
    ):
        check_pairs(pairs, sft.batch_size, dist, "SFT", need_target=True)
        self.policy, self.pairs, self.sft, self.sampler = policy, list(pairs), sft, sampler
        self.seed, self.dist = seed, dist
        self.total_steps = sft_steps(len(self.pairs), sft)
        self.optimizer, self.scheduler = adamw(
            policy.trainable_parameters(),
            sft.learning_rate,
            sft.weight_decay,
            linear_warmup(sft.warmup_steps),
        )

    def position(self, steps_done: int) -> int:
        return steps_done * self.sft.batch_size

    def step(self, step: int) -> dict[str, float]:
        start = time.perf_counter()
        lr = self.scheduler.get_last_lr()[0]
        chosen = step_pairs(len(self.pairs), self.sft.batch_size, self.seed, step)
        places = shard(list(enumerate(chosen)), self.dist.rank, self.dist.world)
        self.optimizer.zero_grad(set_to_none=True)
        losses = []
        for place, index in places:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, "sft", step, place))
            loss = sft_loss(self.policy, self.pairs[index], self.sampler, generator)
            (loss / len(places)).backward()
            losses.append(loss.detach())
        loss = torch.stack(losses).mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the SFT loss is not finite ({float(loss)})")
        params = self.policy.trainable_parameters()
        grad_norm = apply_update(self.optimizer, self.scheduler, params, self.sft.max_grad_norm, self.dist)
        return {
            "loss": self.dist.mean(float(loss)),
            "lr": lr,
            "grad_norm": grad_norm,
            "seconds/step": self.dist.mean(time.perf_counter() - start),
        }
