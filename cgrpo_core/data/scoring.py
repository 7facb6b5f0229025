"""Scorer: identity consistency and aesthetic scores for SynCD sets that lack them (SynCD cal_scores.py).

For each set: the subject crop of every image (the square box around its mask, SynCD's ``crop_by_mask``)
goes through an identity embedder; the pairwise cosine similarities of the embeddings form the set's
``dino_scores`` (N x N, upper triangle, zeros on and below the diagonal, as SynCD writes them). Every whole
image goes through an aesthetic scorer (``aesthetics_scores``: {file stem: score}).

The models are injected as two callables, so this module works with the paper's DINOv2 + LAION predictor
and with the toy zoo's models alike:

- ``embedder(crops: list[PIL RGB], masks: list[PIL L]) -> (N, D) array``
- ``aesthetic(images: list[PIL RGB]) -> (N,) array``

Images of several sets are batched into one call. Each set's scores are written atomically to its own file
in ``scores_dir``, so a killed run loses at most one batch and a rerun skips the sets already scored.
A set whose image or mask cannot be read is reported (file + reason), skipped and retried on the next run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from cgrpo_core.data.syncd import Issue
from cgrpo_core.store import atomic_write_json

__all__ = [
    "AestheticScorer",
    "ScoreRun",
    "UnreadableFile",
    "SubjectEmbedder",
    "load_set",
    "merge_scores",
    "pairwise_upper",
    "score_file",
    "score_sets",
    "subject_crop",
]

SubjectEmbedder = Callable[[Sequence[Image.Image], Sequence[Image.Image]], np.ndarray]
AestheticScorer = Callable[[Sequence[Image.Image]], np.ndarray]


class UnreadableFile(ValueError):
    """An image or mask that is missing or cannot be decoded."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


@dataclass
class ScoreRun:
    """What one scoring pass did: sets scored now, sets whose score file already existed, failures."""

    scored: int = 0
    reused: int = 0
    failed: list[Issue] = field(default_factory=list)


def subject_crop(
    image: Image.Image, mask: Image.Image, threshold: float = 0.1
) -> tuple[Image.Image, Image.Image]:
    """The square box around the mask's pixels above ``threshold`` (0-1), cropped from image and mask.

    As SynCD's ``crop_by_mask``: the square is centred on the mask's bounding box with the box's longer
    side; parts outside the image are black. An empty mask gives the whole image and a full mask.
    """
    if mask.size != image.size:
        mask = mask.resize(image.size, Image.NEAREST)
    on = np.asarray(mask, dtype=np.float32) / 255.0 > threshold  # (H, W)
    if not on.any():
        return image, Image.new("L", image.size, 255)
    rows, cols = np.flatnonzero(on.any(axis=1)), np.flatnonzero(on.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    half = max(bottom - top, right - left) / 2
    cy, cx = (top + bottom) / 2, (left + right) / 2
    box = tuple(int(round(v)) for v in (cx - half, cy - half, cx + half, cy + half))
    return image.crop(box), mask.crop(box)


def pairwise_upper(embeddings: np.ndarray) -> list[list[float]]:
    """Cosine similarities of N embeddings (N, D) as SynCD's N x N upper-triangular matrix (diagonal 0)."""
    emb = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)  # (N, 1)
    if emb.ndim != 2 or not np.isfinite(emb).all() or (norms == 0).any():
        raise ValueError(f"identity embeddings must be finite, non-zero, of shape (N, D); got {emb.shape}")
    unit = emb / norms
    return np.triu(unit @ unit.T, k=1).tolist()  # (N, N)


def score_file(scores_dir: str | Path, set_id: str) -> Path:
    return Path(scores_dir) / f"{set_id.replace('/', '__')}.json"


def load_set(root: Path, row) -> tuple[list[Image.Image], list[Image.Image]]:
    """The set's images (RGB) and masks (L), fully decoded; a bad file raises :class:`UnreadableFile`."""
    images, masks = [], []
    for rel_image, rel_mask in zip(row.images, row.masks, strict=True):
        for rel, mode, out in ((rel_image, "RGB", images), (rel_mask, "L", masks)):
            path = root / rel
            try:
                with Image.open(path) as handle:
                    out.append(handle.convert(mode))
            except (OSError, SyntaxError, ValueError) as err:
                reason = "file missing" if isinstance(err, FileNotFoundError) else f"unreadable image ({err})"
                raise UnreadableFile(path, reason) from err
    return images, masks


def _needs_scores(row) -> bool:
    return row.num_images >= 2 and (row.dino_scores is None or row.aesthetics is None)


def _flush(pending: list, scores_dir: Path, embedder, aesthetic, threshold: float) -> None:
    """Score the pending sets in one embedder call and one aesthetic call; write one file per set."""
    crops, crop_masks, images = [], [], []
    for _, set_images, set_masks in pending:
        for image, mask in zip(set_images, set_masks, strict=True):
            crop, crop_mask = subject_crop(image, mask, threshold)
            crops.append(crop)
            crop_masks.append(crop_mask)
            images.append(image)
    embeddings = np.asarray(embedder(crops, crop_masks), dtype=np.float64)  # (N, D)
    aesthetics = np.asarray(aesthetic(images), dtype=np.float64).reshape(-1)  # (N,)
    if len(embeddings) != len(images) or len(aesthetics) != len(images) or not np.isfinite(aesthetics).all():
        raise ValueError(
            f"scorers must return one finite value per image: {len(images)} images, "
            f"{len(embeddings)} embeddings, {len(aesthetics)} aesthetic scores"
        )
    start = 0
    for row, set_images, _ in pending:
        stop = start + len(set_images)
        stems = [Path(p).stem for p in row.images]
        atomic_write_json(
            score_file(scores_dir, row.set_id),
            {
                "set_id": row.set_id,
                "filenames": list(row.images),
                "dino_scores": pairwise_upper(embeddings[start:stop]),
                "aesthetics_scores": dict(zip(stems, aesthetics[start:stop].tolist(), strict=True)),
            },
        )
        start = stop


def score_sets(
    sets: pd.DataFrame,
    root: str | Path,
    scores_dir: str | Path,
    embedder: SubjectEmbedder,
    aesthetic: AestheticScorer,
    batch_size: int = 32,
    mask_threshold: float = 0.1,
    progress: bool = True,
) -> ScoreRun:
    """Score every set of ``sets`` (the reader's table) that lacks scores and has no score file yet."""
    root, scores_dir = Path(root), Path(scores_dir)
    scores_dir.mkdir(parents=True, exist_ok=True)
    todo = [row for row in sets.itertuples() if _needs_scores(row)]
    run = ScoreRun()
    pending, pending_images = [], 0
    for row in tqdm(todo, desc="scoring SynCD sets", unit="set", disable=not progress):
        if score_file(scores_dir, row.set_id).is_file():
            run.reused += 1
            continue
        try:
            images, masks = load_set(root, row)
        except UnreadableFile as err:
            run.failed.append(Issue(err.path, err.reason, row.set_id))
            continue
        pending.append((row, images, masks))
        pending_images += len(images)
        if pending_images >= batch_size:
            _flush(pending, scores_dir, embedder, aesthetic, mask_threshold)
            run.scored += len(pending)
            pending, pending_images = [], 0
    if pending:
        _flush(pending, scores_dir, embedder, aesthetic, mask_threshold)
        run.scored += len(pending)
    return run


def merge_scores(sets: pd.DataFrame, scores_dir: str | Path) -> pd.DataFrame:
    """``sets`` with missing dino/aesthetic scores filled from the score files (metadata scores win)."""
    dino, aesthetics = list(sets["dino_scores"]), list(sets["aesthetics"])
    for i, row in enumerate(sets.itertuples()):
        path = score_file(scores_dir, row.set_id)
        if not _needs_scores(row) or not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("filenames") != list(row.images):
            raise ValueError(
                f"{path}: scores are for files {data.get('filenames')}, the set now has {row.images}"
            )
        if row.dino_scores is None:
            dino[i] = data["dino_scores"]
        if row.aesthetics is None:
            aesthetics[i] = [float(data["aesthetics_scores"][Path(p).stem]) for p in row.images]
    return sets.assign(dino_scores=dino, aesthetics=aesthetics)
