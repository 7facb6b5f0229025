"""The optimisation loop every trainer shares: AdamW, a warm-up + cosine learning-rate schedule, gradient-norm
clipping, and the training curve they report.

    optimizer, schedule = adamw(model.parameters(), lr, weight_decay, warmup_cosine(steps, warmup))
    for step in range(steps):
        loss = ...
        grad_norm = optimizer_step(optimizer, schedule, loss, model.parameters(), max_grad_norm)
        curve.append((step, loss.item()))

The schedule is a multiplier of the peak rate per optimiser step (``LambdaLR``): step k runs at
``lr * factor(k)``. :func:`phases` chains warm-up + cosine phases (a restart per phase).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch

__all__ = ["Curve", "adamw", "lr_factor", "optimizer_step", "phases", "warmup_cosine"]

Curve = list[tuple[int, float]]  # (optimiser step, training loss)
Schedule = Callable[[int], float]


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """Learning-rate multiplier: linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``steps``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(steps: int, warmup: int) -> Schedule:
    """The multiplier of :func:`lr_factor` over ``steps`` optimiser steps."""
    return lambda step: lr_factor(step, steps, warmup)


def phases(spans: Sequence[tuple[int, int]]) -> Schedule:
    """Warm-up + cosine phases one after the other: ``spans`` of ``(steps, warmup)``; past the last phase
    the multiplier is 0."""

    def factor(step: int) -> float:
        for steps, warmup in spans:
            if step < steps:
                return lr_factor(step, steps, warmup)
            step -= steps
        return 0.0

    return factor


def adamw(
    params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float, schedule: Schedule | None = None
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW at peak rate ``lr`` and its per-step schedule (None: constant)."""
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule or (lambda step: 1.0))


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    loss: torch.Tensor,
    params: Iterable[torch.nn.Parameter],
    max_grad_norm: float | None = None,
) -> float | None:
    """Backward ``loss``, clip the gradient norm to ``max_grad_norm`` (None: no clipping), step the
    optimiser and the schedule; returns the gradient norm before clipping (None when not clipped)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = None
    if max_grad_norm is not None:
        norm = float(torch.nn.utils.clip_grad_norm_(list(params), max_grad_norm))
    optimizer.step()
    schedule.step()
    return norm
