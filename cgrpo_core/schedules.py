"""Time-Aware Dynamic Weighting (TDW): the prompt reward's weight per sampling step (paper Eq. 12).

Index convention: ``k = 0 .. T-1`` counts sampling steps from the noisiest (k = 0, sigma = 1) to the
cleanest, as in the appendix and the released code (reference/NOTES.md). ``w_id = 1 - w_prompt``.

Eq. 12 in that convention, with the appendix's phases for T = 25::

    k <  6        prompt-centric        w_prompt = w_max
    6 <= k < 22   transition            w_prompt = w_min + (w_max - w_min) * (1 - sigmoid(lam * (k - t_c)))
    k >= 22       identity refinement   w_prompt = w_min

The paper gives neither ``lam`` nor ``t_c``. We take the authors' released values, ``lam = 0.8`` and
``t_c = 10`` (the released code computes t_c as the midpoint of 6 and 14), so that the ``paper`` and
``released`` presets share one curve and differ only where the paper and the code disagree: the
released code sets w_prompt = 0.5 (not w_min) in the identity phase. With those values the curve
has nearly reached w_min by k = 16 (w_prompt(16) = 0.303 for 0.7/0.3).

For other step counts every position (6, 10, 22) scales by ``T / 25`` and the slope by ``25 / T``, so
the curve keeps its shape in normalised time; T = 25 reproduces the integers above exactly.

Presets (:data:`SCHEDULES`):
- ``paper``     Eq. 12 as above.
- ``released``  the released code: same curve, identity phase at ``identity_weight`` (0.5).
- ``inverted``  Table 5's "Inverted TDW": the paper curve reversed in time (identity first, prompt last).
- ``static``    constant ``(w_max + w_min) / 2``; give ``w_max = w_min = w`` for a constant ``w``
  (naive GRPO 1:1 is 0.5, 1:1.5 is 0.6).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["SCHEDULES", "TDWShape", "prompt_weights", "identity_weights"]

REFERENCE_STEPS = 25  # the appendix's T, in which the phase boundaries below are given


@dataclass(frozen=True)
class TDWShape:
    """Phase boundaries and sigmoid of Eq. 12, in steps of a ``REFERENCE_STEPS``-step sampler."""

    prompt_phase_end: float = 6.0  # appendix A: prompt-centric phase t < 6
    identity_phase_start: float = 22.0  # appendix A: identity-refinement phase t >= 22
    center: float = 10.0  # t_c: not in the paper; released code (midpoint of 6 and 14)
    slope: float = 0.8  # lambda: not in the paper; released code


def _check_bounds(w_max: float, w_min: float) -> None:
    if not (0.0 <= w_min <= w_max <= 1.0):
        raise ValueError(f"TDW bounds need 0 <= w_min <= w_max <= 1, got w_min={w_min}, w_max={w_max}")


def _paper(
    num_steps: int, w_max: float, w_min: float, shape: TDWShape, identity_weight: float | None
) -> Tensor:
    scale = num_steps / REFERENCE_STEPS
    k = torch.arange(num_steps, dtype=torch.float64)
    sigmoid = torch.sigmoid(shape.slope / scale * (k - shape.center * scale))
    w = w_min + (w_max - w_min) * (1.0 - sigmoid)  # transition phase, Eq. 12 middle case
    w = torch.where(k < shape.prompt_phase_end * scale, torch.tensor(w_max, dtype=torch.float64), w)
    final = w_min if identity_weight is None else identity_weight
    return torch.where(k >= shape.identity_phase_start * scale, torch.tensor(final, dtype=torch.float64), w)


def paper(num_steps: int, w_max: float, w_min: float, shape: TDWShape) -> Tensor:
    """Eq. 12 with the appendix's phases (module docstring)."""
    return _paper(num_steps, w_max, w_min, shape, identity_weight=None)


def released(
    num_steps: int, w_max: float, w_min: float, shape: TDWShape, identity_weight: float = 0.5
) -> Tensor:
    """The released code: Eq. 12's curve, but w_prompt = ``identity_weight`` (0.5) in the identity phase."""
    if not (w_min <= identity_weight <= w_max):
        raise ValueError(f"identity_weight={identity_weight} must lie in [w_min, w_max] = [{w_min}, {w_max}]")
    return _paper(num_steps, w_max, w_min, shape, identity_weight=identity_weight)


def inverted(num_steps: int, w_max: float, w_min: float, shape: TDWShape) -> Tensor:
    """Table 5's inverted curriculum: the paper curve reversed in time (identity early, prompt late)."""
    return paper(num_steps, w_max, w_min, shape).flip(0)


def static(num_steps: int, w_max: float, w_min: float, shape: TDWShape) -> Tensor:
    """A constant ``(w_max + w_min) / 2`` at every step (naive GRPO; Table 2 'w/o TDW')."""
    return torch.full((num_steps,), (w_max + w_min) / 2.0, dtype=torch.float64)


SCHEDULES: dict[str, Callable[..., Tensor]] = {
    "paper": paper,
    "released": released,
    "inverted": inverted,
    "static": static,
}


def prompt_weights(
    name: str,
    num_steps: int = 25,
    w_max: float = 0.7,
    w_min: float = 0.3,
    shape: TDWShape | None = None,
    dtype: torch.dtype = torch.float32,
    **kwargs: float,
) -> Tensor:
    """``w_prompt`` per sampling step, ``[num_steps]``, index 0 the noisiest; within ``[w_min, w_max]``.

    Args:
        name: a key of :data:`SCHEDULES`.
        num_steps: sampling steps T (paper: 25).
        w_max, w_min: bounds of the prompt weight (paper: 0.7 / 0.3; Table 4 varies them).
        shape: phase boundaries and sigmoid of Eq. 12 (:class:`TDWShape`, defaults documented there).
        kwargs: schedule-specific options (``released``: ``identity_weight``).
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown TDW schedule {name!r}; choose one of {sorted(SCHEDULES)}")
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if not (math.isfinite(w_max) and math.isfinite(w_min)):
        raise ValueError(f"w_max and w_min must be finite, got {w_max}, {w_min}")
    _check_bounds(w_max, w_min)
    try:
        w = SCHEDULES[name](num_steps, w_max, w_min, shape or TDWShape(), **kwargs)
    except TypeError as err:
        raise ValueError(f"schedule {name!r} got unexpected options {sorted(kwargs)}: {err}") from None
    return w.clamp(w_min, w_max).to(dtype)  # exact bounds despite float rounding of the sigmoid


def identity_weights(w_prompt: Tensor) -> Tensor:
    """``w_id = 1 - w_prompt`` (Eq. 12)."""
    return 1.0 - w_prompt
