"""The loop every trainer shares: resume from the last checkpoint, run the steps, report, checkpoint.

A trainer (:class:`Trainer`: GRPO, SFT, RPO) does one optimiser step per call of ``step(step)`` and draws
every random number from generators seeded by ``(seed, step, ...)`` (:func:`~cgrpo_core.training.data.
derive_seed`), never from a global RNG, so a step's result depends only on the parameters and optimiser
state it starts from. :func:`train` then gives:

- **checkpoints** every ``checkpoint_every`` steps and after the last one, in ``<folder>/checkpoints/
  step-NNNNNN/``: the trainable (LoRA) parameters, the optimiser and learning-rate schedule states, the
  global torch, numpy and Python RNG states (restored although the trainers do not draw from them), the
  step and data position, and the step metrics so far. Each is written into a temporary folder and renamed
  into place, then ``checkpoints/latest`` names it (atomic write); the two newest are kept.
- **resume**: ``train`` on a folder that holds a checkpoint loads it and continues with the next step. As
  every step is a function of the state the checkpoint restores, a killed run continued this way ends at
  the LoRA of an uninterrupted run, bit for bit on CPU.
- **reports**: ``on_step(step, metrics)`` after each step (``step`` = the number of optimiser steps done),
  and ``on_start(done)`` once before the first step; the caller logs them (MLflow, a progress bar).
- **errors** that name the step and the cause (:class:`TrainingError`): a non-finite metric or loss, a
  NaN reward, an empty training list. The last good checkpoint stays as it was.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from cgrpo_core.policy.loading import Policy
from cgrpo_core.store import atomic_write_json, atomic_write_text

__all__ = [
    "CHECKPOINTS",
    "Trainer",
    "TrainingError",
    "latest_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
    "train",
    "trainable_state",
]

CHECKPOINTS = "checkpoints"
KEEP = 2  # checkpoints kept (the newest two: one may be the one being read while the next is written)


class TrainingError(RuntimeError):
    """A training run stopped: the message names the step and the cause."""


class Trainer(Protocol):
    """One method's optimisation: its policy (with the trained LoRA), optimiser and schedule."""

    policy: Policy
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler

    def step(self, step: int) -> dict[str, float]:
        """Optimiser step ``step`` (0-based): update the LoRA, return the step's metrics."""
        ...

    def position(self, steps_done: int) -> int:
        """How far into the training data the run is after ``steps_done`` steps (pairs read)."""
        ...


def trainable_state(policy: Policy) -> dict[str, torch.Tensor]:
    """The trainable parameters by name, detached copies on the CPU (exact values)."""
    return {
        name: p.detach().cpu().clone() for name, p in policy.transformer.named_parameters() if p.requires_grad
    }


def _load_trainable(policy: Policy, state: dict[str, torch.Tensor]) -> None:
    params = {n: p for n, p in policy.transformer.named_parameters() if p.requires_grad}
    if set(params) != set(state):
        raise ValueError(
            "the checkpoint's LoRA does not match this policy's (different rank or targets?): "
            f"{len(set(state) ^ set(params))} parameter names differ"
        )
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(state[name].to(device=p.device, dtype=p.dtype))


def _rng_states() -> dict[str, Any]:
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The newest complete checkpoint under ``folder/checkpoints`` (None: none yet)."""
    pointer = Path(folder) / CHECKPOINTS / "latest"
    if not pointer.is_file():
        return None
    path = pointer.parent / pointer.read_text(encoding="utf-8").strip()
    return path if (path / "state.json").is_file() else None


def save_checkpoint(
    folder: str | Path, trainer: Trainer, steps_done: int, history: list[dict[str, float]]
) -> Path:
    """Write checkpoint ``step-<steps_done>`` atomically (module docstring); returns its folder."""
    root = Path(folder) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{steps_done:06d}"
    final = root / name
    tmp = root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(trainable_state(trainer.policy), tmp / "lora.pt")
    torch.save(
        {
            "optimizer": trainer.optimizer.state_dict(),
            "scheduler": trainer.scheduler.state_dict(),
            "rng": _rng_states(),
        },
        tmp / "optimizer.pt",
    )
    (tmp / "history.json").write_text(json.dumps(history), encoding="utf-8")
    state = {"step": steps_done, "position": trainer.position(steps_done)}
    (tmp / "state.json").write_text(json.dumps(state), encoding="utf-8")  # last: marks it whole
    for file in tmp.iterdir():
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    atomic_write_text(root / "latest", name)
    for old in sorted(root.glob("step-*"))[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str | Path, trainer: Trainer) -> tuple[int, list[dict[str, float]]]:
    """Restore a checkpoint into ``trainer``; returns (steps done, the step metrics so far)."""
    path = Path(path)
    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    _load_trainable(trainer.policy, torch.load(path / "lora.pt", map_location="cpu"))
    opt = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False)
    trainer.optimizer.load_state_dict(opt["optimizer"])
    trainer.scheduler.load_state_dict(opt["scheduler"])
    _set_rng_states(opt["rng"])
    history = json.loads((path / "history.json").read_text(encoding="utf-8"))
    return int(state["step"]), history


def _check_finite(step: int, metrics: dict[str, float]) -> None:
    bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
    if bad:
        raise TrainingError(f"step {step}: non-finite metrics {bad}")


def train(
    trainer: Trainer,
    max_steps: int,
    folder: str | Path,
    checkpoint_every: int,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    is_writer: bool = True,
) -> list[dict[str, float]]:
    """Run ``trainer`` to ``max_steps`` optimiser steps in ``folder``, resuming from its last checkpoint
    (module docstring). ``is_writer``: this process writes checkpoints (rank 0 of a data-parallel run;
    every rank reads them). Returns every step's metrics (``history[k]``: step k + 1)."""
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    done, history = 0, []
    found = latest_checkpoint(folder)
    if found is not None:
        done, history = load_checkpoint(found, trainer)
    if on_start is not None:
        on_start(done)
    for step in range(done, max_steps):
        try:
            metrics = trainer.step(step)
        except TrainingError:
            raise
        except (FloatingPointError, ValueError) as err:
            raise TrainingError(f"step {step + 1}: {err}") from err
        _check_finite(step + 1, metrics)
        history.append(metrics)
        if on_step is not None:
            on_step(step + 1, metrics)
        if is_writer and ((step + 1) % checkpoint_every == 0 or step + 1 == max_steps):
            save_checkpoint(folder, trainer, step + 1, history)
    if is_writer:
        atomic_write_json(Path(folder) / "history.json", history)
    return history
