"""Score a folder of images against a manifest of references and prompts (evaluation, filtering, Table 6).

The manifest (``.csv``, ``.json`` list of records, ``.jsonl`` or ``.parquet``) has one row per image:

- ``image`` (required): path relative to the image folder (or absolute);
- ``prompt``: the text prompt (CLIP-T, HPSv3, prompt judge);
- ``references``: the subject's reference images (DINO, DINO-Seg, CLIP-I, identity judge), a list, or
  in CSV one string separated by ``|``; paths relative to the manifest's folder (or absolute);
- ``subject``: the subject's class name (open-vocabulary segmentation, identity judge);
- ``reference_masks``: optional subject masks of the references, aligned with ``references`` (white =
  subject; empty = segment it).

The result is the manifest plus one float column per metric, in manifest order.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from cgrpo_core.rewards.base import RewardBatch
from cgrpo_core.rewards.registry import RewardSet
from cgrpo_core.store import file_hash

__all__ = ["folder_inputs_hash", "read_manifest", "score_folder"]

LIST_COLUMNS = ("references", "reference_masks")
NEED_COLUMNS = {"references": "references", "prompts": "prompt", "subjects": "subject"}


def _as_paths(value, root: Path) -> list[str]:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    items = value.split("|") if isinstance(value, str) else list(value)
    return [str(root / p) if p and not Path(p).is_absolute() else str(p) for p in items]


def read_manifest(path: str | Path) -> pd.DataFrame:
    """The manifest as a DataFrame; list columns become lists of absolute-or-manifest-relative paths."""
    path = Path(path)
    readers = {
        ".csv": pd.read_csv,
        ".json": pd.read_json,
        ".parquet": pd.read_parquet,
        ".jsonl": lambda p: pd.read_json(p, lines=True),
    }
    if path.suffix not in readers:
        raise ValueError(f"manifest {path} must be one of {sorted(readers)}")
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} does not exist")
    frame = readers[path.suffix](path)
    if "image" not in frame.columns:
        raise ValueError(f"manifest {path} needs an 'image' column (have {list(frame.columns)})")
    for column in LIST_COLUMNS:
        if column in frame.columns:
            frame[column] = [_as_paths(v, path.parent) for v in frame[column]]
    return frame


def _batch(rows: pd.DataFrame, image_dir: Path, needs: frozenset[str]) -> RewardBatch:
    images = [p if Path(p).is_absolute() else image_dir / p for p in rows["image"]]
    kwargs = {}
    for need, column in NEED_COLUMNS.items():
        if need in needs:
            kwargs[need] = list(rows[column])
    if "references" in needs and "reference_masks" in rows.columns:
        kwargs["reference_masks"] = [
            [m or None for m in masks] if masks else [None] * len(refs)
            for masks, refs in zip(rows["reference_masks"], rows["references"], strict=True)
        ]
    return RewardBatch(images, **kwargs)


def score_folder(
    image_dir: str | Path, manifest: str | Path, names: list[str], rewards: RewardSet, chunk_size: int = 64
) -> pd.DataFrame:
    """The manifest with one score column per name in ``names``, computed chunk by chunk."""
    frame, image_dir = read_manifest(manifest), Path(image_dir)
    needs = rewards.needs(names)
    missing = [col for need, col in NEED_COLUMNS.items() if need in needs and col not in frame.columns]
    if missing:
        raise ValueError(f"metrics {names} need manifest column(s) {missing} (have {list(frame.columns)})")
    scores: dict[str, list[float]] = {name: [] for name in names}
    starts = range(0, len(frame), chunk_size)
    for start in tqdm(starts, desc="scoring", disable=len(starts) < 2):
        batch = _batch(frame.iloc[start : start + chunk_size], image_dir, needs)
        for name, values in rewards.score(names, batch).items():
            scores[name].extend(float(v) for v in values)
    return frame.assign(**scores)


def folder_inputs_hash(image_dir: str | Path, manifest: str | Path) -> str:
    """Content hash of the manifest and of every image, reference and mask file it names."""
    frame, image_dir = read_manifest(manifest), Path(image_dir)
    digest = hashlib.sha256(file_hash(manifest).encode())
    files = [p if Path(p).is_absolute() else image_dir / p for p in frame["image"]]
    for column in LIST_COLUMNS:
        if column in frame.columns:
            files += [p for paths in frame[column] for p in paths if p]
    for path in files:
        digest.update(f"{Path(path).name}:{file_hash(path)}".encode())
    return digest.hexdigest()[:16]
