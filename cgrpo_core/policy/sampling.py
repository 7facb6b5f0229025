"""Samplers of the policy: deterministic ODE sampling, SDE rollouts with log-probs, log-prob recomputation.

Every step goes through :mod:`cgrpo_core.flow_matching` (shifted sigmas, ``ode_step``, ``sde_step``): the
sigma schedule is ``shifted_sigmas(T, shift)`` (released code: constant shift 3, 25 steps), the transformer
gets ``timestep = sigma`` and the FLUX guidance embedding ``guidance`` (released: 3.5), and predicts the
velocity of the target tokens; reference tokens ride along in the sequence (UNO) and their outputs are
dropped.

- :func:`sample`: Euler ODE from seeded noise (evaluation); ``rollout(eta=0)`` gives the same latents.
- :func:`rollout`: a group of G SDE trajectories sharing one condition (GRPO, section 3 / appendix B.1),
  with the whole latent trajectory and the per-step log-probabilities, under ``torch.no_grad``. Its images
  (what the rewards score) are decoded from the last step's predicted clean sample ``x - sigma * v``, as
  the released trainer and DanceGRPO do, not from the final SDE sample, which carries that step's noise
  (std ``eta * sqrt(sigma_{T-1})``: 0.13 in latent units at the paper's shift 3 / 25 steps / eta 0.4,
  0.35 at the toy profile's 10 steps / eta 0.7). The stored trajectory and log-probs are the SDE's.
- :func:`log_prob` / :func:`step_distribution`: the log-probability (and the Gaussian) of a rollout's
  stored transitions (any mix of samples and steps) under the current parameters, differentiable through
  the LoRA: the numerator of the GRPO ratio. The sampler settings are the rollout's own, so a
  recomputation cannot use other ones.

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

from cgrpo_core.flow_matching import SDEStep, ode_step, sde_step, shifted_sigmas
from cgrpo_core.policy.conditioning import Condition
from cgrpo_core.policy.config import SamplerConfig
from cgrpo_core.policy.images import decode_latents, to_uint8
from cgrpo_core.policy.latents import pack_latents

if TYPE_CHECKING:
    from cgrpo_core.policy.loading import Policy

__all__ = [
    "Rollout",
    "initial_noise",
    "log_prob",
    "rollout",
    "sample",
    "sample_train_steps",
    "step_distribution",
    "velocity",
]


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
    ``log_probs[:, t]`` is log p(latents[:, t+1] | latents[:, t]) (mean over latent dimensions);
    ``clean`` is the last step's predicted clean sample, which ``images`` show.
    """

    latents: Tensor  # (G, T + 1, N, D) float32
    log_probs: Tensor  # (G, T) float32
    clean: Tensor  # (G, N, D) float32: x_{T-1} - sigma_{T-1} * v_{T-1}
    sigmas: Tensor  # (T + 1,)
    cond: Condition  # batch 1, shared by the group
    settings: SamplerConfig
    images: Tensor | None  # (G, H, W, 3) uint8 decoded from ``clean``, None when not decoded

    @property
    def final(self) -> Tensor:
        """Final SDE latents ``[G, N, D]`` (noisy by the last step's std; see ``clean``)."""
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
    """G = ``group_size`` SDE trajectories from one condition (batch 1).

    Each step is ``sde_step`` with ``settings.eta`` (released: 0.4); the initial and per-step noise both
    come from ``generator`` (on the policy's device), so a seed fixes the whole group. With
    ``settings.same_group_noise`` every member starts from one initial noise (released config).
    """
    if cond.batch != 1:
        raise ValueError(f"a rollout group shares one condition (batch 1), got batch {cond.batch}")
    if generator is None and settings.eta > 0:
        raise ValueError("an SDE rollout needs a seeded torch.Generator (samplers never use the global RNG)")
    if noise is None and settings.same_group_noise:
        x = _start(policy, cond, 1, None, generator).expand(group_size, -1, -1).clone()  # (G, N, D)
    else:
        x = _start(policy, cond, group_size, noise, generator)
    sigmas = shifted_sigmas(settings.num_steps, settings.shift, device=policy.device)
    states, log_probs = [x], []
    for i in tqdm(range(settings.num_steps), desc="rollout", disable=not progress):
        v = _chunked_velocity(policy, cond, x, sigmas[i], settings.guidance, batch_size)
        step = sde_step(x, v, sigmas[i], sigmas[i + 1], settings.eta, generator=generator)
        x = step.sample
        states.append(x)
        log_probs.append(step.log_prob.float())
    clean = step.x0_hat.float()  # (G, N, D): the last step's prediction, what the rewards score
    images = to_uint8(decode_latents(policy, clean, cond.resolution, batch_size)) if decode else None
    return Rollout(
        latents=torch.stack(states, dim=1),  # (G, T + 1, N, D)
        log_probs=torch.stack(log_probs, dim=1),  # (G, T)
        clean=clean,
        sigmas=sigmas,
        cond=cond,
        settings=settings,
        images=images,
    )


def step_distribution(policy: Policy, group: Rollout, samples: Tensor, steps: Tensor | int) -> SDEStep:
    """The SDE step of ``group``'s stored transitions (samples[m], steps[m]) under the current parameters.

    ``log_prob`` ``[M]`` carries the gradient through the LoRA; ``mean`` and ``std`` give the per-step KL
    to a reference policy (:func:`cgrpo_core.losses.gaussian_kl`). Sigmas, eta and guidance are the
    rollout's own settings, so at unchanged parameters ``log_prob`` equals ``group.log_probs[samples,
    steps]`` (the GRPO ratio is 1). Several transitions form one transformer batch.

    Args:
        samples: ``[M]`` indices into the group (or an int for one sample).
        steps: ``[M]`` step indices in [0, T) (or an int for one step).
    """
    settings = group.settings
    samples = torch.as_tensor(samples, dtype=torch.long, device=group.latents.device)
    steps = torch.as_tensor(steps, dtype=torch.long, device=group.latents.device)
    samples, steps = torch.broadcast_tensors(samples.reshape(-1), steps.reshape(-1))
    if bool(((steps < 0) | (steps >= settings.num_steps)).any()):
        raise ValueError(f"step indices must lie in [0, {settings.num_steps}), got {steps.tolist()}")
    if bool(((samples < 0) | (samples >= group.latents.shape[0])).any()):
        raise ValueError(f"sample indices must lie in [0, {group.latents.shape[0]}), got {samples.tolist()}")
    latents, next_latents = group.transitions(samples, steps)  # (M, N, D) each
    sigmas = group.sigmas.to(policy.device)
    steps = steps.to(policy.device)
    sigma, sigma_next = sigmas[steps], sigmas[steps + 1]  # (M,)
    x = latents.float().to(policy.device)
    v = velocity(policy, group.cond, x, sigma, settings.guidance)
    return sde_step(x, v, sigma, sigma_next, settings.eta, next_latents=next_latents.to(policy.device))


def log_prob(policy: Policy, group: Rollout, samples: Tensor, steps: Tensor | int) -> Tensor:
    """Log-probability ``[M]`` of ``group``'s stored transitions under the current parameters, with grad
    (:func:`step_distribution`)."""
    return step_distribution(policy, group, samples, steps).log_prob


def sample_train_steps(
    num_steps: int, fraction: float, skip_last: bool, generator: torch.Generator
) -> Tensor:
    """Step indices to train on: the first ``int(n * fraction)`` of a random permutation of the n trainable
    steps, n = ``num_steps`` (paper) or ``num_steps - 1`` with ``skip_last`` (the released trainer leaves out
    the transition into the final sample). Released: T = 25, skip_last, 0.6 -> 14 of steps 0-23; the paper:
    fraction 1 trains all 25. At least one step is always returned.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    trainable = num_steps - 1 if skip_last else num_steps
    if trainable < 1:
        raise ValueError(f"no step to train: {num_steps} sampling steps with skip_last={skip_last}")
    count = max(1, int(trainable * fraction))
    return torch.randperm(trainable, generator=generator)[:count]
