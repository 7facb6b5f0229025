"""Samplers of the policy: deterministic ODE sampling, SDE rollouts with log-probs, log-prob recomputation.

Every step goes through :mod:`cgrpo_core.flow_matching` (shifted sigmas, ``ode_step``, ``sde_step``): the
sigma schedule is ``shifted_sigmas(T, shift)`` (released code: constant shift 3, 25 steps), the transformer
gets ``timestep = sigma`` and the FLUX guidance embedding ``guidance`` (released: 3.5), and predicts the
velocity of the target tokens; reference tokens ride along in the sequence (UNO) and their outputs are
dropped.

- :func:`sample`: Euler ODE from seeded noise (evaluation); ``rollout(eta=0)`` gives the same latents.
- :func:`rollout`: a group of G SDE trajectories sharing one condition (GRPO, section 3 / appendix B.1),
  with the whole latent trajectory and the per-step log-probabilities, under ``torch.no_grad``.
- :func:`log_prob`: the log-probability of stored transitions (any mix of samples and steps) under the
  current parameters, differentiable through the LoRA: the numerator of the GRPO ratio.

Notation: G group size, T steps, N target tokens, D = 4C packed channels, M transitions.

Deviations from the released trainer: the timestep is sigma itself (it truncates ``int(sigma * 1000) /
1000``); noise comes only from the ``torch.Generator`` passed in (never the global RNG), drawn in the
unpacked latent shape as diffusers' FluxPipeline does, so a seed gives the same noise as there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from tqdm.auto import tqdm

from cgrpo_core.config import SamplerConfig
from cgrpo_core.flow_matching import ode_step, sde_step, shifted_sigmas
from cgrpo_core.policy.conditioning import Condition, pack_latents
from cgrpo_core.policy.images import decode_latents, to_uint8

if TYPE_CHECKING:
    from cgrpo_core.policy.loading import Policy

__all__ = ["Rollout", "initial_noise", "log_prob", "rollout", "sample", "sample_train_steps", "velocity"]


def velocity(
    policy: Policy, cond: Condition, latents: Tensor, sigma: Tensor | float, guidance: float
) -> Tensor:
    """The transformer's velocity for the target tokens: ``[B, N, D]`` in float32.

    Args:
        cond: batch 1 (shared) or B.
        latents: ``[B, N, D]`` packed noisy latents.
        sigma: scalar or ``[B]`` noise levels in [0, 1].
    """
    b, n, _ = latents.shape
    if n != cond.num_tokens:
        raise ValueError(f"latents have {n} tokens, the condition's target grid has {cond.num_tokens}")
    cond = cond.expand(b)
    dtype, device = policy.dtype, policy.device
    hidden = torch.cat([latents.to(device=device, dtype=dtype), cond.ref_tokens], dim=1)  # (B, N + R, D)
    timestep = torch.as_tensor(sigma, dtype=torch.float32, device=device).expand(b)
    out = policy.transformer(
        hidden_states=hidden,
        encoder_hidden_states=cond.prompt_embeds,
        pooled_projections=cond.pooled_embeds,
        timestep=timestep.to(dtype),
        img_ids=torch.cat([cond.img_ids, cond.ref_ids]),
        txt_ids=cond.txt_ids,
        guidance=torch.full((b,), guidance, dtype=dtype, device=device),
        return_dict=False,
    )[0]
    return out[:, :n].float()  # (B, N, D): reference outputs dropped


def initial_noise(policy: Policy, cond: Condition, num: int, generator: torch.Generator) -> Tensor:
    """Standard normal latents ``[num, N, D]`` (float32), drawn as ``[num, C, H, W]`` then packed."""
    side = 2 * cond.grid
    noise = torch.randn(num, policy.latent_channels, side, side, generator=generator, device=generator.device)
    return pack_latents(noise).to(policy.device)


def _start(policy: Policy, cond: Condition, num: int, noise: Tensor | None, generator) -> Tensor:
    if noise is None:
        if generator is None:
            raise ValueError(
                "pass a seeded torch.Generator or explicit noise (samplers never use the global RNG)"
            )
        return initial_noise(policy, cond, num, generator)
    expected = (num, cond.num_tokens, 4 * policy.latent_channels)
    if tuple(noise.shape) != expected:
        raise ValueError(
            f"noise must have shape {expected} (batch, tokens, packed channels), got {tuple(noise.shape)}"
        )
    return noise.float().to(policy.device)


def _chunked_velocity(
    policy: Policy, cond: Condition, x: Tensor, sigma: Tensor, guidance: float, batch_size: int | None
) -> Tensor:
    """:func:`velocity` over ``x`` in transformer batches of at most ``batch_size`` (no grad callers)."""
    step = batch_size or x.shape[0]
    chunks = [slice(i, i + step) for i in range(0, x.shape[0], step)]
    return torch.cat([velocity(policy, cond.select(s), x[s], sigma, guidance) for s in chunks])


@torch.no_grad()
def sample(
    policy: Policy,
    cond: Condition,
    settings: SamplerConfig,
    num_samples: int = 1,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
    batch_size: int | None = None,
    progress: bool = False,
) -> Tensor:
    """Deterministic Euler ODE sampling (evaluation): final latents ``[num_samples, N, D]`` float32.

    ``settings`` gives num_steps, shift and guidance (eta is ignored); ``noise`` overrides the seeded start.
    ``cond`` may have batch 1 (shared) or ``num_samples``; ``batch_size`` bounds the transformer batch.
    """
    x = _start(policy, cond, num_samples, noise, generator)
    sigmas = shifted_sigmas(settings.num_steps, settings.shift, device=policy.device)
    for i in tqdm(range(settings.num_steps), desc="sample", disable=not progress):
        v = _chunked_velocity(policy, cond, x, sigmas[i], settings.guidance, batch_size)
        x = ode_step(x, v, sigmas[i], sigmas[i + 1])
    return x


@dataclass(frozen=True)
class Rollout:
    """A group of SDE trajectories and what GRPO needs from them.

    ``latents[:, t]`` is the state before step t (t = 0 is the noise, t = T the final sample);
    ``log_probs[:, t]`` is log p(latents[:, t+1] | latents[:, t]) (mean over latent dimensions).
    """

    latents: Tensor  # (G, T + 1, N, D) float32
    log_probs: Tensor  # (G, T) float32
    sigmas: Tensor  # (T + 1,)
    cond: Condition  # batch 1, shared by the group
    settings: SamplerConfig
    images: Tensor | None  # (G, H, W, 3) uint8, None when not decoded

    @property
    def final(self) -> Tensor:
        """Final latents ``[G, N, D]``."""
        return self.latents[:, -1]

    def transitions(self, samples: Tensor, steps: Tensor) -> tuple[Tensor, Tensor]:
        """``(latents [M, N, D], next_latents [M, N, D])`` of transitions (samples[m], steps[m])."""
        return self.latents[samples, steps], self.latents[samples, steps + 1]


@torch.no_grad()
def rollout(
    policy: Policy,
    cond: Condition,
    group_size: int,
    settings: SamplerConfig,
    generator: torch.Generator | None = None,
    noise: Tensor | None = None,
    decode: bool = True,
    batch_size: int | None = None,
    progress: bool = False,
) -> Rollout:
    """G = ``group_size`` SDE trajectories from one condition (batch 1) with different noise.

    Each step is ``sde_step`` with ``settings.eta`` (released: 0.4); the initial and per-step noise both
    come from ``generator`` (on the policy's device), so a seed fixes the whole group.
    """
    if cond.batch != 1:
        raise ValueError(f"a rollout group shares one condition (batch 1), got batch {cond.batch}")
    if generator is None and settings.eta > 0:
        raise ValueError("an SDE rollout needs a seeded torch.Generator (samplers never use the global RNG)")
    x = _start(policy, cond, group_size, noise, generator)
    sigmas = shifted_sigmas(settings.num_steps, settings.shift, device=policy.device)
    states, log_probs = [x], []
    for i in tqdm(range(settings.num_steps), desc="rollout", disable=not progress):
        v = _chunked_velocity(policy, cond, x, sigmas[i], settings.guidance, batch_size)
        x, lp = sde_step(x, v, sigmas[i], sigmas[i + 1], settings.eta, generator=generator)
        states.append(x)
        log_probs.append(lp.float())
    images = None
    if decode:
        images = to_uint8(decode_latents(policy, x, cond.resolution, batch_size))
    return Rollout(
        latents=torch.stack(states, dim=1),  # (G, T + 1, N, D)
        log_probs=torch.stack(log_probs, dim=1),  # (G, T)
        sigmas=sigmas,
        cond=cond,
        settings=settings,
        images=images,
    )


def log_prob(
    policy: Policy,
    cond: Condition,
    latents: Tensor,
    next_latents: Tensor,
    steps: Tensor | int,
    settings: SamplerConfig,
) -> Tensor:
    """Log-probability ``[M]`` of transitions latents -> next_latents at step indices ``steps``, with grad.

    Recomputes the SDE step's Gaussian under the current parameters (same sigmas, eta, guidance as the
    rollout), so at unchanged parameters it equals the rollout's ``log_probs`` (the GRPO ratio is 1).

    Args:
        cond: batch 1 (shared by all M transitions) or M.
        latents, next_latents: ``[M, N, D]``.
        steps: an int or ``[M]`` step indices in [0, T); several steps form one transformer batch.
    """
    m = latents.shape[0]
    steps = torch.as_tensor(steps, dtype=torch.long, device=policy.device).expand(m)
    if bool(((steps < 0) | (steps >= settings.num_steps)).any()):
        raise ValueError(f"step indices must lie in [0, {settings.num_steps}), got {steps.tolist()}")
    sigmas = shifted_sigmas(settings.num_steps, settings.shift, device=policy.device)
    sigma, sigma_next = sigmas[steps], sigmas[steps + 1]  # (M,)
    x = latents.float().to(policy.device)
    v = velocity(policy, cond, x, sigma, settings.guidance)
    _, lp = sde_step(x, v, sigma, sigma_next, settings.eta, next_latents=next_latents.to(policy.device))
    return lp  # (M,)


def sample_train_steps(num_steps: int, fraction: float, generator: torch.Generator) -> Tensor:
    """Step indices to train on: the first ``int(num_steps * fraction)`` of a random permutation.

    Released code: timestep_fraction 0.6 -> 14 of its 24 trained transitions; fraction 1 trains all steps
    (paper). At least one step is always returned.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    count = max(1, int(num_steps * fraction))
    return torch.randperm(num_steps, generator=generator)[:count]
