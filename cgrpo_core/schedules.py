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

Presets (:data:`SCHEDULES`; every one has the signature ``(num_steps, w_max, w_min, shape,
identity_weight)``, so the config adapter :func:`tdw_weights` dispatches without knowing any of them):

- ``paper``     Eq. 12 as above (``identity_weight`` unused: the identity phase is at ``w_min``).
- ``released``  the released code's weight function: the same curve, identity phase at ``identity_weight``
  (0.5). Keyed to the sampling step as Eq. 12 is. What the released *run* did differs: it called the
  function with each trained transition's position in a random permutation of the steps (training
  strategy "all") and trained only positions 0-13, so its weights bore no relation to denoising time and
  its 0.5 was never used. That behaviour is not reproduced; keying the weights to the step is the
  paper's method.
- ``inverted``  Table 5's "Inverted TDW": the paper curve reversed in time (identity first, prompt last).
- ``static``    constant ``(w_max + w_min) / 2``; give ``w_max = w_min = w`` for a constant ``w``
  (naive GRPO 1:1 is 0.5, 1:1.5 is 0.6).

Every parameter is a required argument: the values live in :class:`cgrpo_core.training.config.TDWConfig`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from cgrpo_core.training.config import TDWConfig

__all__ = ["SCHEDULES", "TDWShape", "identity_weights", "prompt_weights", "tdw_weights"]

REFERENCE_STEPS = 25  # the appendix's T, in which the phase boundaries below are given


@dataclass(frozen=True)
class TDWShape:
    """Phase boundaries and sigmoid of Eq. 12, in steps of a ``REFERENCE_STEPS``-step sampler."""

    prompt_phase_end: float  # appendix A: prompt-centric phase t < 6
    identity_phase_start: float  # appendix A: identity-refinement phase t >= 22
    center: float  # t_c: not in the paper; released code 10 (midpoint of 6 and 14)
    slope: float  # lambda: not in the paper; released code 0.8


def _curve(num_steps: int, w_max: float, w_min: float, shape: TDWShape, final: float) -> Tensor:
    scale = num_steps / REFERENCE_STEPS
    k = torch.arange(num_steps, dtype=torch.float64)
    sigmoid = torch.sigmoid(shape.slope / scale * (k - shape.center * scale))
    w = w_min + (w_max - w_min) * (1.0 - sigmoid)  # transition phase, Eq. 12 middle case
    w = torch.where(k < shape.prompt_phase_end * scale, torch.tensor(w_max, dtype=torch.float64), w)
    return torch.where(k >= shape.identity_phase_start * scale, torch.tensor(final, dtype=torch.float64), w)


def paper(num_steps: int, w_max: float, w_min: float, shape: TDWShape, identity_weight: float) -> Tensor:
    """Eq. 12 with the appendix's phases (module docstring); ``identity_weight`` is not used."""
    return _curve(num_steps, w_max, w_min, shape, final=w_min)


def released(num_steps: int, w_max: float, w_min: float, shape: TDWShape, identity_weight: float) -> Tensor:
    """The released code's function: Eq. 12's curve, w_prompt = ``identity_weight`` in the identity phase."""
    if not (w_min <= identity_weight <= w_max):
        raise ValueError(f"identity_weight={identity_weight} must lie in [w_min, w_max] = [{w_min}, {w_max}]")
    return _curve(num_steps, w_max, w_min, shape, final=identity_weight)


def inverted(num_steps: int, w_max: float, w_min: float, shape: TDWShape, identity_weight: float) -> Tensor:
    """Table 5's inverted curriculum: the paper curve reversed in time (identity early, prompt late)."""
    return paper(num_steps, w_max, w_min, shape, identity_weight).flip(0)


def static(num_steps: int, w_max: float, w_min: float, shape: TDWShape, identity_weight: float) -> Tensor:
    """A constant ``(w_max + w_min) / 2`` at every step (naive GRPO; Table 2 'w/o TDW')."""
    return torch.full((num_steps,), (w_max + w_min) / 2.0, dtype=torch.float64)


SCHEDULES: dict[str, Callable[[int, float, float, TDWShape, float], Tensor]] = {
    "paper": paper,
    "released": released,
    "inverted": inverted,
    "static": static,
}


def prompt_weights(
    name: str,
    num_steps: int,
    w_max: float,
    w_min: float,
    shape: TDWShape,
    identity_weight: float,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """``w_prompt`` per sampling step, ``[num_steps]``, index 0 the noisiest; within ``[w_min, w_max]``.

    Args:
        name: a key of :data:`SCHEDULES`.
        num_steps: sampling steps T (paper: 25).
        w_max, w_min: bounds of the prompt weight (paper: 0.7 / 0.3; Table 4 varies them).
        shape: phase boundaries and sigmoid of Eq. 12 (:class:`TDWShape`).
        identity_weight: the identity-phase value of the ``released`` schedule (the others ignore it).
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown TDW schedule {name!r}; choose one of {sorted(SCHEDULES)}")
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if not (math.isfinite(w_max) and math.isfinite(w_min)):
        raise ValueError(f"w_max and w_min must be finite, got {w_max}, {w_min}")
    if not (0.0 <= w_min <= w_max <= 1.0):
        raise ValueError(f"TDW bounds need 0 <= w_min <= w_max <= 1, got w_min={w_min}, w_max={w_max}")
    w = SCHEDULES[name](num_steps, w_max, w_min, shape, identity_weight)
    return w.clamp(w_min, w_max).to(dtype)  # exact bounds despite float rounding of the sigmoid


def identity_weights(w_prompt: Tensor) -> Tensor:
    """``w_id = 1 - w_prompt`` (Eq. 12)."""
    return 1.0 - w_prompt


def tdw_weights(
    tdw: TDWConfig, num_steps: int, schedule: str | None = None, dtype: torch.dtype = torch.float64
) -> tuple[Tensor, Tensor]:
    """``(w_id, w_prompt)``, each ``[num_steps]``, of a TDW config section (optionally under another
    schedule name, for figures that compare schedules at one config's bounds)."""
    shape = TDWShape(tdw.prompt_phase_end, tdw.identity_phase_start, tdw.center, tdw.slope)
    w_prompt = prompt_weights(
        schedule or tdw.schedule, num_steps, tdw.w_max, tdw.w_min, shape, tdw.released_identity_weight, dtype
    )
    return identity_weights(w_prompt), w_prompt
