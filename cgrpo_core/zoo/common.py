"""Helpers every zoo trainer shares: the training-curve type, the learning-rate schedule, safe saving."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["Curve", "lr_factor", "replace_component", "require_component"]

Curve = list[tuple[int, float]]  # (optimiser step, training loss)


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """Learning-rate multiplier: linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``steps``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def replace_component(model, folder: str | Path) -> Path:
    """``model.save_pretrained`` into ``folder``, replacing what was there only once the save succeeded."""
    folder = Path(folder)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        model.save_pretrained(tmp)
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def require_component(folder: str | Path, component: str) -> Path:
    """``folder``, if it holds ``component/config.json``; else an error saying to build the checkpoint."""
    folder = Path(folder)
    if not (folder / component / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder / component} not found: build the tiny checkpoint first "
            "(cgrpo_core.zoo.build_base_checkpoint(world_dir, folder, cfg))"
        )
    return folder
