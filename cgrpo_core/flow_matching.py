"""Rectified-flow sampling primitives: shifted sigma schedule, Euler ODE step, SDE step with log-prob.

Convention (FLUX / rectified flow, paper Eq. 3): a noisy latent at noise level sigma in [0, 1] is
``z = (1 - sigma) * x0 + sigma * noise`` and the model predicts the velocity ``v = noise - x0``.
Sampling runs sigma from 1 (pure noise) down to 0 (data) over ``T`` steps, so ``sigma_next < sigma``.

The SDE step is the DanceGRPO form used by the authors' released trainer (reference/NOTES.md),
which converts the probability-flow ODE into an SDE with the same marginals (paper Eq. 13)::

    dsigma   = sigma_next - sigma                          (< 0)
    x0_hat   = x - sigma * v
    score    = -(x - (1 - sigma) * x0_hat) / sigma**2      (score of N(x; (1-sigma) x0_hat, sigma^2))
    mean     = x + dsigma * v  -  0.5 * eta**2 * score * dsigma
    std      = eta * sqrt(sigma - sigma_next)
    x_next   = mean + std * N(0, I)

``log_prob`` is the Gaussian log-density of ``x_next`` under that step, averaged (not summed) over
every non-batch dimension: one value per sample, as in the released code. Averaging keeps the GRPO
ratio on a scale independent of the latent size; the clip range (released: 1e-4) is tuned for it.
:func:`sde_step` returns an :class:`SDEStep` with the step's ``mean`` and ``std`` too (the per-step KL
to a reference policy needs them: :func:`cgrpo_core.losses.gaussian_kl`) and ``x0_hat``, the predicted
clean sample, which is what rewards score after the last step (the released trainer and DanceGRPO decode
it, not the noisy final SDE sample).

Deviation from the released code: its normalisation terms ``-log(std) - log(sqrt(2 pi))`` sit on a
separate Python line and are never added (a no-op statement), so its log-probs lack them. They cancel
in every ratio; we include them so that ``log_prob`` is a true log-density (tested against
``torch.distributions.Normal``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "SDEStep",
    "add_noise",
    "flux_shift",
    "ode_step",
    "sde_step",
    "shifted_sigmas",
    "velocity_target",
]


def shifted_sigmas(num_steps: int, shift: float, device=None, dtype=torch.float32) -> Tensor:
    """Noise levels of a ``num_steps`` sampler, from 1 down to 0, warped by a time shift.

    ``sigma = shift * t / (1 + (shift - 1) * t)`` for ``t = linspace(1, 0, num_steps + 1)``; shift > 1
    spends more steps at high noise. FLUX's resolution-dependent shift is the same map with
    ``shift = exp(mu)`` (see :func:`flux_shift`). Released code: shift 3, 25 steps.

    Returns:
        ``[num_steps + 1]`` tensor, ``sigmas[0] == 1`` and ``sigmas[-1] == 0``, strictly decreasing.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if not (shift > 0 and math.isfinite(shift)):
        raise ValueError(f"shift must be a positive finite number, got {shift}")
    t = torch.linspace(1.0, 0.0, num_steps + 1, dtype=torch.float64)
    sigmas = shift * t / (1.0 + (shift - 1.0) * t)
    return sigmas.to(device=device, dtype=dtype)


def flux_shift(
    image_seq_len: int,
    base_seq_len: int = 256,
    max_seq_len: int = 4096,
    base_shift: float = 0.5,
    max_shift: float = 1.15,
) -> float:
    """FLUX.1-dev's resolution-dependent shift ``exp(mu)``, mu linear in the image token count.

    Defaults are FLUX.1-dev's scheduler config; 1024 tokens (512 px) give ``exp(0.66875) ~ 1.95``.
    """
    slope = (max_shift - base_shift) / (max_seq_len - base_seq_len)
    mu = base_shift + slope * (image_seq_len - base_seq_len)
    return math.exp(mu)


def _per_sample(value: float | Tensor, like: Tensor) -> Tensor:
    """Broadcast a scalar or ``[batch]`` sigma against ``like`` of shape ``[batch, ...]``."""
    value = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if value.ndim == 0:
        return value
    if value.ndim != 1 or value.shape[0] != like.shape[0]:
        raise ValueError(
            f"sigma must be a scalar or a [batch] tensor with batch={like.shape[0]}, "
            f"got shape {tuple(value.shape)}"
        )
    return value.view(-1, *([1] * (like.ndim - 1)))


def add_noise(x0: Tensor, noise: Tensor, sigma: float | Tensor) -> Tensor:
    """Forward process ``z = (1 - sigma) * x0 + sigma * noise`` (paper Eq. 3); sigma scalar or ``[batch]``."""
    s = _per_sample(sigma, x0)
    return (1.0 - s) * x0 + s * noise


def velocity_target(x0: Tensor, noise: Tensor) -> Tensor:
    """The flow-matching regression target ``v = noise - x0`` (paper Eq. 4)."""
    return noise - x0


def ode_step(latents: Tensor, velocity: Tensor, sigma: float | Tensor, sigma_next: float | Tensor) -> Tensor:
    """One Euler step of the probability-flow ODE: ``x + (sigma_next - sigma) * v``."""
    s, s_next = _per_sample(sigma, latents), _per_sample(sigma_next, latents)
    return latents + (s_next - s) * velocity


@dataclass(frozen=True)
class SDEStep:
    """One SDE step's outcome and its Gaussian (module docstring); every tensor ``[batch, ...]`` but
    ``log_prob`` ``[batch]``; float32 or wider."""

    sample: Tensor  # x_next: drawn, or the stored outcome that was passed in (detached)
    log_prob: Tensor  # (batch,) log-density of ``sample``, mean over the non-batch dimensions
    mean: Tensor  # the Gaussian's mean (carries the velocity's gradient)
    std: Tensor  # eta * sqrt(sigma - sigma_next): a scalar or (batch, 1, ...)
    x0_hat: Tensor  # predicted clean sample x - sigma * v (carries the velocity's gradient)


def sde_step(
    latents: Tensor,
    velocity: Tensor,
    sigma: float | Tensor,
    sigma_next: float | Tensor,
    eta: float,
    generator: torch.Generator | None = None,
    next_latents: Tensor | None = None,
) -> SDEStep:
    """One stochastic step and the log-probability of its outcome (DanceGRPO form, module docstring).

    Args:
        latents: ``[batch, ...]`` current latents at noise level ``sigma``.
        velocity: ``[batch, ...]`` predicted velocity at ``latents``.
        sigma, sigma_next: scalars or ``[batch]`` tensors with ``sigma_next < sigma``.
        eta: noise scale (released code: 0.4). ``eta = 0`` is the deterministic Euler step; its
            transition density is a point mass, so ``log_prob`` is returned as 0 by convention.
        generator: draws the step's noise when ``next_latents`` is None.
        next_latents: a stored outcome; when given it is returned (detached) with its log-probability
            under this step, so gradients flow only through ``velocity`` (the GRPO ratio's numerator).
    """
    if latents.shape != velocity.shape:
        raise ValueError(f"latents {tuple(latents.shape)} and velocity {tuple(velocity.shape)} must match")
    if eta < 0 or not math.isfinite(eta):
        raise ValueError(f"eta must be a finite number >= 0, got {eta}")
    if next_latents is not None and next_latents.shape != latents.shape:
        raise ValueError(
            f"next_latents {tuple(next_latents.shape)} must match latents {tuple(latents.shape)}"
        )
    # Work in at least float32: bf16 log-probs make the GRPO ratio drift from 1 (NOTES.md).
    work = torch.promote_types(latents.dtype, torch.float32)
    x, v = latents.to(work), velocity.to(work)
    s, s_next = _per_sample(sigma, x), _per_sample(sigma_next, x)
    if not (bool(torch.isfinite(s).all()) and bool(torch.isfinite(s_next).all())):
        raise ValueError(f"sde_step needs finite sigmas, got sigma={sigma}, sigma_next={sigma_next}")
    if bool(torch.any(s > 1)) or bool(torch.any(s_next < 0)):
        raise ValueError(
            "sde_step needs 0 <= sigma_next < sigma <= 1 (flow matching interpolates data, sigma=0, and "
            f"noise, sigma=1); got sigma={sigma}, sigma_next={sigma_next}"
        )
    if bool(torch.any(s_next >= s)):
        raise ValueError(
            "sde_step needs sigma_next < sigma (sampling runs from noise, sigma=1, to data, sigma=0)"
        )
    if bool(torch.any(s <= 0)):
        raise ValueError("sde_step needs sigma > 0")

    dsigma = s_next - s  # (batch, 1, ...) negative
    x0_hat = x - s * v
    score = -(x - (1.0 - s) * x0_hat) / s**2
    mean = x + dsigma * v - 0.5 * eta**2 * score * dsigma
    std = eta * torch.sqrt(s - s_next)  # (batch, 1, ...) or scalar

    batch_dims = tuple(range(1, x.ndim))
    if eta == 0.0:
        out = mean.detach() if next_latents is None else next_latents.detach().to(work)
        zero = torch.zeros(x.shape[0], dtype=work, device=x.device)
        return SDEStep(out, zero, mean, std, x0_hat)

    if next_latents is None:
        noise = torch.randn(x.shape, generator=generator, dtype=work, device=x.device)
        out = (mean + std * noise).detach()
    else:
        out = next_latents.detach().to(work)
    log_density = -((out - mean) ** 2) / (2 * std**2) - torch.log(std) - 0.5 * math.log(2 * math.pi)
    log_density = torch.broadcast_to(log_density, x.shape)
    log_prob = log_density.mean(dim=batch_dims) if batch_dims else log_density
    return SDEStep(out, log_prob, mean, std, x0_hat)
