"""Group-relative advantages and the ways of combining an identity and a prompt advantage.

Notation: B prompts per batch, G samples per prompt (the group), T sampling steps.

Pipeline (paper Alg. 1): rewards ``r_id, r_prompt`` of shape ``[B, G]`` -> :func:`group_normalize`
each (Eq. 8) -> :func:`combine_advantages` with a method from :data:`AGGREGATORS` and per-step weights
from :mod:`cgrpo_core.schedules` -> ``[B, G, T]`` advantages for the clipped surrogate (Eq. 7).

Methods (Table 3 rows; the released code's definitions, reference/NOTES.md):

- ``linear``   naive GRPO, Eq. 9: ``w_id * a_id + w_prompt * a_prompt``.
- ``sars``     Synergy-Aware Reward Shaping, Eq. 10-11: linear ``+ alpha * S`` when either advantage is
  positive, ``- alpha * S`` when both are <= 0, with ``S = tanh(a_id * a_prompt)``. Both-positive
  samples are amplified, conflicting and both-negative samples pushed down. (DESIGN.md calls it
  ``sars_tanh``.)
- ``min`` / ``max``  ``min(a_id, a_prompt)`` / ``max(a_id, a_prompt)``; as in the released code they
  replace the weighted sum, so the weights (and TDW) play no part.
- ``harmonic`` linear ``+ alpha * a_id * a_prompt / (a_id + a_prompt + eps)``, eps = 1e-6 (released
  code). The denominator vanishes on the line ``a_id + a_prompt = -eps``; we keep the released formula
  but floor ``|denominator|`` at eps (sign kept) so the result stays finite. That changes nothing
  except within eps of that line; the optional result clip bounds it further.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "AGGREGATORS",
    "combine_advantages",
    "conflict_stats",
    "group_normalize",
    "harmonic",
    "linear",
    "max_advantage",
    "min_advantage",
    "sars",
]

HARMONIC_EPS = 1e-6  # released code


def group_normalize(rewards: Tensor, eps: float, unbiased: bool = True) -> Tensor:
    """Per-group standardised rewards ``(r - mean) / (std + eps)`` (Eq. 8).

    Args:
        rewards: ``[B, G]``; each row is the group of G samples that share a prompt and a reference.
        eps: added to the std (released code: 1e-8). A group whose rewards are all equal has std 0
            and gets advantage 0 for every sample: it carries no preference.
        unbiased: Bessel-corrected std (``torch.std`` default, as in the released code).

    Returns:
        ``[B, G]`` advantages, same dtype as ``rewards``.
    """
    if not isinstance(rewards, Tensor):
        rewards = torch.as_tensor(rewards, dtype=torch.float32)
    if rewards.ndim != 2:
        raise ValueError(
            f"rewards must have shape [B, G] (B prompts, G samples per prompt), got {tuple(rewards.shape)}"
        )
    if rewards.shape[1] < 2:
        raise ValueError(
            f"group size G must be >= 2 to normalise within a group, got G={rewards.shape[1]} "
            "(set the group size to 2 or more)"
        )
    if not rewards.is_floating_point():
        rewards = rewards.float()
    bad = ~torch.isfinite(rewards)
    if bool(bad.any()):
        where = [tuple(i) for i in bad.nonzero().tolist()[:5]]
        raise ValueError(
            f"rewards must be finite; found {int(bad.sum())} NaN/inf value(s) at [prompt, sample] {where}. "
            "Check the reward model's inputs (blank images, empty prompts) before normalising."
        )
    mean = rewards.mean(dim=1, keepdim=True)  # (B, 1)
    std = rewards.std(dim=1, keepdim=True, unbiased=unbiased)  # (B, 1)
    return (rewards - mean) / (std + eps)


def linear(a_id: Tensor, a_prompt: Tensor, w_id: Tensor, w_prompt: Tensor, alpha: float) -> Tensor:
    """Naive GRPO, Eq. 9: ``w_id * a_id + w_prompt * a_prompt`` (``alpha`` unused)."""
    return w_id * a_id + w_prompt * a_prompt


def sars(a_id: Tensor, a_prompt: Tensor, w_id: Tensor, w_prompt: Tensor, alpha: float) -> Tensor:
    """Synergy-Aware Reward Shaping, Eq. 10-11 (``alpha = 0`` is :func:`linear`)."""
    synergy = torch.tanh(a_id * a_prompt)  # Eq. 10, in [-1, 1]
    any_positive = (a_id > 0) | (a_prompt > 0)
    sign = torch.where(any_positive, 1.0, -1.0).to(synergy.dtype)  # Eq. 11 branches
    return linear(a_id, a_prompt, w_id, w_prompt, alpha) + alpha * sign * synergy


def min_advantage(a_id: Tensor, a_prompt: Tensor, w_id: Tensor, w_prompt: Tensor, alpha: float) -> Tensor:
    """Table 3 'Min(A_id, A_prompt)': the smaller advantage; weights and ``alpha`` unused."""
    return torch.minimum(a_id, a_prompt) + 0.0 * (w_id + w_prompt)  # broadcast to the weights' shape


def max_advantage(a_id: Tensor, a_prompt: Tensor, w_id: Tensor, w_prompt: Tensor, alpha: float) -> Tensor:
    """Table 3 'Max(A_id, A_prompt)': the larger advantage; weights and ``alpha`` unused."""
    return torch.maximum(a_id, a_prompt) + 0.0 * (w_id + w_prompt)


def harmonic(a_id: Tensor, a_prompt: Tensor, w_id: Tensor, w_prompt: Tensor, alpha: float) -> Tensor:
    """Table 3 'Harmonic Mean': linear ``+ alpha * a_id a_prompt / (a_id + a_prompt + eps)`` (released)."""
    den = a_id + a_prompt + HARMONIC_EPS
    den = torch.where(den.abs() < HARMONIC_EPS, torch.where(den < 0, -HARMONIC_EPS, HARMONIC_EPS), den)
    return linear(a_id, a_prompt, w_id, w_prompt, alpha) + alpha * a_id * a_prompt / den


Aggregator = Callable[[Tensor, Tensor, Tensor, Tensor, float], Tensor]

AGGREGATORS: dict[str, Aggregator] = {
    "linear": linear,
    "sars": sars,
    "min": min_advantage,
    "max": max_advantage,
    "harmonic": harmonic,
}


def _as_weight(w: float | Tensor, name: str, like: Tensor) -> Tensor:
    w = torch.as_tensor(w, dtype=like.dtype, device=like.device)
    if w.ndim > 1:
        raise ValueError(
            f"{name} must be a scalar or a [T] tensor of per-step weights, got shape {tuple(w.shape)}"
        )
    if not bool(torch.isfinite(w).all()):
        raise ValueError(f"{name} must be finite, got {w.tolist()}")
    return w


def _finite_advantages(a_id, a_prompt) -> tuple[Tensor, Tensor]:
    """Both advantages as tensors; a non-finite entry is an error that says where (a NaN would otherwise
    pass through the sign tests of SARS and Fig. 7 as if it were 0)."""
    out = []
    for name, value in (("a_id", a_id), ("a_prompt", a_prompt)):
        value = torch.as_tensor(value)
        if not value.is_floating_point():
            value = value.float()
        bad = ~torch.isfinite(value)
        if bad.any():
            where = tuple(int(i) for i in bad.nonzero()[0])
            raise ValueError(
                f"{name} has a non-finite value ({value[where].item()}) at index {where}: advantages come "
                "from group_normalize of finite rewards; check the reward model's output"
            )
        out.append(value)
    return out[0], out[1]


def combine_advantages(
    a_id: Tensor,
    a_prompt: Tensor,
    w_id: float | Tensor,
    w_prompt: float | Tensor,
    method: str,
    alpha: float,
    clip: float | None,
) -> Tensor:
    """Combine identity and prompt advantages into the advantage the policy is trained on.

    Args:
        a_id, a_prompt: ``[B, G]`` group-normalised advantages (:func:`group_normalize`).
        w_id, w_prompt: scalars, or ``[T]`` per-sampling-step weights (TDW, Eq. 12), index 0 the noisiest.
        method: a key of :data:`AGGREGATORS`.
        alpha: synergy strength for ``sars`` and ``harmonic`` (paper: 0.5; released config: 0.4); >= 0; the
            other methods ignore it.
        clip: clamp the result to ``[-clip, clip]`` (released code: 5); None: no clamp.

    Returns:
        ``[B, G]`` for scalar weights, ``[B, G, T]`` for per-step weights.
    """
    if method not in AGGREGATORS:
        raise ValueError(f"unknown advantage method {method!r}; choose one of {sorted(AGGREGATORS)}")
    a_id, a_prompt = _finite_advantages(a_id, a_prompt)
    if a_id.shape != a_prompt.shape or a_id.ndim != 2:
        raise ValueError(
            "a_id and a_prompt must both have shape [B, G]; "
            f"got {tuple(a_id.shape)} and {tuple(a_prompt.shape)}"
        )
    if not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0 (it scales the synergy term), got {alpha}")
    if clip is not None and not clip > 0:
        raise ValueError(f"clip must be a positive number or None, got {clip}")
    dtype = torch.promote_types(a_id.dtype, torch.float32)
    a_id, a_prompt = a_id.to(dtype), a_prompt.to(dtype)
    wi, wp = _as_weight(w_id, "w_id", a_id), _as_weight(w_prompt, "w_prompt", a_id)
    if wi.shape != wp.shape:
        raise ValueError(
            f"w_id and w_prompt must have the same shape, got {tuple(wi.shape)} and {tuple(wp.shape)}"
        )
    if wi.ndim == 1:
        a_id, a_prompt = a_id.unsqueeze(-1), a_prompt.unsqueeze(-1)  # (B, G, 1) against weights (T,)
    out = AGGREGATORS[method](a_id, a_prompt, wi, wp, alpha)
    if wi.ndim == 1:
        out = out.expand(*out.shape[:2], wi.shape[0])  # (B, G, T) also for weight-free methods
    return out.clamp(-clip, clip) if clip is not None else out


def conflict_stats(a_id: Tensor, a_prompt: Tensor) -> dict[str, float]:
    """Shares of samples by the signs of their two advantages (paper Fig. 7a).

    ``both_positive`` (synergy), ``both_negative``, ``conflict`` (strictly opposite signs) and
    ``neutral`` (at least one advantage exactly 0, e.g. a group whose rewards were all equal).
    The four shares sum to 1.
    """
    a_id, a_prompt = _finite_advantages(a_id, a_prompt)
    if a_id.shape != a_prompt.shape:
        raise ValueError(
            f"a_id {tuple(a_id.shape)} and a_prompt {tuple(a_prompt.shape)} must have the same shape"
        )
    n = a_id.numel()
    if n == 0:
        raise ValueError("conflict_stats needs at least one sample")
    si, sp = torch.sign(a_id), torch.sign(a_prompt)
    counts = {
        "both_positive": int(((si > 0) & (sp > 0)).sum()),
        "both_negative": int(((si < 0) & (sp < 0)).sum()),
        "conflict": int((si * sp < 0).sum()),
        "neutral": int(((si == 0) | (sp == 0)).sum()),
    }
    return {k: v / n for k, v in counts.items()}
