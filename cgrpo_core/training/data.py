"""The training list a trainer reads, and which pairs each optimiser step takes.

The list is the authors' ``train.json`` format that prepare-syncd writes: one record per (reference,
target) pair with ``ref_img`` (the reference photo), ``img`` (the target photo: SFT's and RPO's
similarity target), ``text`` (the target's prompt) and ``category_description`` (the subject), image
paths relative to an image root.

Which pairs a step takes is a pure function of ``(seed, step)``: the pairs are visited epoch by epoch, each
epoch in its own permutation drawn from ``derive_seed(seed, "epoch", e)``; step s takes the global positions
``s * P .. s * P + P - 1``. So a resumed run needs no data-loader state (its position is ``step * P``),
and a data-parallel run shards each step's P pairs across ranks without changing which pairs are trained.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["TrainPair", "derive_seed", "read_train_list", "shard", "step_pairs"]


@dataclass(frozen=True)
class TrainPair:
    """One training record: the reference photo, the target photo and the target's prompt."""

    index: int
    reference: Path
    target: Path | None
    prompt: str
    subject: str | None


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed from the run's seed and a path of names (``"rollout", step, pair``): independent
    streams for every random choice, none drawn from a global RNG."""
    text = "\0".join(str(p) for p in (seed, *parts)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") >> 1


def read_train_list(path: str | Path, image_root: str | Path) -> list[TrainPair]:
    """The pairs of a ``train.json`` whose image paths are relative to ``image_root``.

    Raises a ValueError naming the file for an empty list, a record without ``ref_img`` or ``text``, or
    a reference photo that does not exist.
    """
    path, root = Path(path), Path(image_root)
    if not path.is_file():
        raise FileNotFoundError(f"training list {path} does not exist: run prepare-syncd first")
    records = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(records, list) or not records:
        raise ValueError(
            f"training list {path} is empty: the filter kept no pairs (loosen data.filter or check "
            "data.syncd_root)"
        )
    pairs = []
    for k, rec in enumerate(records):
        missing = [key for key in ("ref_img", "text") if not rec.get(key)]
        if missing:
            raise ValueError(f"training list {path}: record {k} has no {' or '.join(missing)}")
        reference = root / rec["ref_img"]
        if not reference.is_file():
            raise ValueError(f"training list {path}: record {k}'s reference {reference} does not exist")
        target = root / rec["img"] if rec.get("img") else None
        pairs.append(TrainPair(k, reference, target, rec["text"], rec.get("category_description")))
    return pairs


@functools.lru_cache(maxsize=8)
def _epoch_order(num_pairs: int, seed: int, epoch: int) -> tuple[int, ...]:
    generator = torch.Generator().manual_seed(derive_seed(seed, "epoch", epoch))
    return tuple(torch.randperm(num_pairs, generator=generator).tolist())


def step_pairs(num_pairs: int, per_step: int, seed: int, step: int) -> list[int]:
    """Indices into the training list of the ``per_step`` pairs of optimiser step ``step`` (module
    docstring); consecutive steps continue through each epoch's permutation."""
    if num_pairs < 1:
        raise ValueError("the training list is empty")
    out = []
    for position in range(step * per_step, (step + 1) * per_step):
        epoch, offset = divmod(position, num_pairs)
        out.append(int(_epoch_order(num_pairs, seed, epoch)[offset]))
    return out


def shard(items: Sequence, rank: int, world: int) -> list:
    """Rank ``rank``'s contiguous share of ``items`` (``len(items)`` must divide by ``world``)."""
    if len(items) % world:
        raise ValueError(
            f"{len(items)} items per step cannot be split evenly over {world} processes: make the pairs "
            "per step a multiple of the number of processes"
        )
    size = len(items) // world
    return list(items[rank * size : (rank + 1) * size])
