"""SynCD reader: metadata files of a SynCD download (or of the toy SynCD) into one table, one row per set.

SynCD (Kumari et al., 2025; github.com/nupurkmr9/syncd) stores multi-image sets of one subject. Each metadata
file (``metadata.json``, or ``metadata_with_scores.json`` written by SynCD's ``cal_scores.py``) holds a JSON
list of items (a single item object is accepted too)::

    {"filenames": ["0.png", "1.png", "2.png"], "prompts": [...], "category": "rigid" | "deformable",
     "dino_scores": N x N upper-triangular pairwise cosine matrix (zeros on and below the diagonal),
     "aesthetics_scores": {file stem: score}}

Filenames are relative to the metadata file's folder; subject masks are ``masks/<stem>.{png,jpg}`` beside
each image (SynCD's loader). We read both layouts the same way: one root-level list of sets in sub-folders
(SynCD's generator), and one ``<set>/metadata.json`` per set (the layout our toy SynCD writes). A set's id
is the folder of its images relative to the root (``<metadata stem>-<index>`` when images lie in the root).

Deviation: ``category_description`` (a field of the authors' training list) is not in SynCD's metadata; we
take the item's ``category_description`` when present, else the words the set's prompts share at their
start (SynCD's rigid prompts start with the Cap3D description), else the category.

Metadata files are the ``*metadata*.json`` files (the generators write ``metadata_<rank>.json``).
Problems never stop the read: a malformed file, a malformed item, a missing image or mask becomes an
:class:`Issue` (file + reason) and that set is left out of the table.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image

__all__ = ["Issue", "SyncdIndex", "mask_path", "metadata_files", "read_syncd", "set_table_schema"]

MASK_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class Issue:
    """A problem with the input: which file, why, and which set it concerns (None: a whole file)."""

    path: str
    reason: str
    set_id: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"path": self.path, "reason": self.reason, "set_id": self.set_id}


@dataclass(frozen=True)
class SyncdIndex:
    sets: pd.DataFrame
    issues: list[Issue]


def set_table_schema():
    """The pyarrow schema of the set table (Parquet)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("set_id", pa.string()),
            ("category", pa.string()),
            ("category_description", pa.string()),
            ("num_images", pa.int64()),
            ("images", pa.list_(pa.string())),
            ("masks", pa.list_(pa.string())),
            ("prompts", pa.list_(pa.string())),
            ("dino_scores", pa.list_(pa.list_(pa.float64()))),
            ("aesthetics", pa.list_(pa.float64())),
            ("metadata_file", pa.string()),
        ]
    )


def _natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def mask_path(image: Path) -> Path | None:
    """``<dir>/masks/<stem>.png`` (or .jpg, SynCD's choice) for an image, None when absent."""
    for suffix in MASK_SUFFIXES:
        candidate = image.parent / "masks" / f"{image.stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def metadata_files(root: Path) -> list[Path]:
    """Every ``*metadata*.json`` under root (SynCD: metadata.json, metadata_<rank>.json, and the
    ``*_with_scores`` files of cal_scores.py, which replace their plain twin)."""
    found: dict[Path, list[Path]] = {}
    for path in root.rglob("*metadata*.json"):
        found.setdefault(path.parent, []).append(path)
    out = []
    for files in found.values():
        scored = {p.name.replace("_with_scores", "") for p in files if "_with_scores" in p.name}
        out += [p for p in files if "_with_scores" in p.name or p.name not in scored]
    return sorted(out, key=lambda p: _natural_key(str(p.relative_to(root))))


def _shared_start(prompts: list[str]) -> str:
    words = [p.strip().rstrip(".").split() for p in prompts]
    common = []
    for column in zip(*words, strict=False):
        if len({w.lower() for w in column}) != 1:
            break
        common.append(column[0])
    text = " ".join(common)
    return text if len(common) >= 2 else ""


def _scores(item: dict, stems: list[str], where: str) -> tuple[list[list[float]] | None, list[float] | None]:
    n = len(stems)
    dino = item.get("dino_scores")
    if dino is not None:
        ok = (
            isinstance(dino, list)
            and len(dino) == n
            and all(isinstance(r, list) and len(r) == n for r in dino)
        )
        if not ok or not all(isinstance(v, int | float) and math.isfinite(v) for r in dino for v in r):
            raise ValueError(f"{where}: dino_scores must be a {n}x{n} matrix of finite numbers")
        dino = [[float(v) for v in row] for row in dino]
    aesthetics = item.get("aesthetics_scores")
    if aesthetics is not None:
        if not isinstance(aesthetics, dict):
            raise ValueError(f"{where}: aesthetics_scores must be an object {{file stem: score}}")
        if not all(s in aesthetics for s in stems):
            return dino, None  # partly scored: the scorer recomputes the set
        values = [aesthetics[s] for s in stems]
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            raise ValueError(f"{where}: aesthetics_scores must be finite numbers")
        aesthetics = [float(v) for v in values]
    return dino, aesthetics


def _set_id(root: Path, folder: Path, metadata: Path, index: int) -> str:
    if folder != root and folder.is_relative_to(root):
        return folder.relative_to(root).as_posix()
    return f"{metadata.stem}-{index}"


def _check_image(path: Path, where: str) -> None:
    """A ValueError naming ``path`` unless PIL can verify it as an image."""
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as err:
        raise ValueError(f"{where}: {path} is not a readable image ({type(err).__name__}: {err})") from None


def _parse_item(item: object, root: Path, metadata: Path, index: int) -> dict:
    """One metadata item -> one table row; raises ValueError naming the problem."""
    where = f"item {index}"
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected an object, got {type(item).__name__}")
    names, prompts = item.get("filenames"), item.get("prompts")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{where}: 'filenames' must be a non-empty list of strings")
    if (
        not isinstance(prompts, list)
        or len(prompts) != len(names)
        or not all(isinstance(p, str) for p in prompts)
    ):
        raise ValueError(f"{where}: 'prompts' must be a list of {len(names)} strings, one per filename")
    images = [metadata.parent / n for n in names]
    folders = {p.parent for p in images}
    if len({p.stem for p in images}) != len(images):
        raise ValueError(f"{where}: two filenames share a stem (aesthetics_scores are keyed by stem)")
    dino, aesthetics = _scores(item, [p.stem for p in images], where)
    for image in images:
        if not image.is_file():
            raise FileNotFoundError(f"{where}: image {image} is missing")
    masks = [mask_path(p) for p in images]
    for image, mask in zip(images, masks, strict=True):
        if mask is None:
            raise FileNotFoundError(f"{where}: mask masks/{image.stem}.png (or .jpg) of {image} is missing")
    if dino is not None and aesthetics is not None:
        # The scorer skips a scored set and never decodes its files: check them here, or a corrupt image
        # of a pre-scored set (as SynCD ships them) would reach the training list unnoticed.
        for path in [*images, *masks]:
            _check_image(path, where)
    category = str(item.get("category") or "unknown")
    description = item.get("category_description") or _shared_start(prompts) or category
    return {
        "set_id": _set_id(root, folders.pop() if len(folders) == 1 else root, metadata, index),
        "category": category,
        "category_description": str(description),
        "num_images": len(images),
        "images": [p.relative_to(root).as_posix() for p in images],
        "masks": [m.relative_to(root).as_posix() for m in masks],
        "prompts": list(prompts),
        "dino_scores": dino,
        "aesthetics": aesthetics,
        "metadata_file": metadata.relative_to(root).as_posix(),
    }


def _load_items(metadata: Path) -> list:
    try:
        data = json.loads(metadata.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"not UTF-8 text ({err})") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"malformed JSON ({err})") from err
    if isinstance(data, dict):
        return [data]
    if not isinstance(data, list):
        raise ValueError(f"expected a list of set items, got {type(data).__name__}")
    return data


def read_syncd(root: str | Path) -> SyncdIndex:
    """Read every set under ``root``: a table (see :func:`set_table_schema`) plus the problems found."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root}: SynCD folder not found; download it (docs/data.md) or generate the toy world"
        )
    rows, issues = [], []
    for metadata in metadata_files(root):
        try:
            items = _load_items(metadata)
        except (OSError, ValueError) as err:
            folder_id = _set_id(root, metadata.parent, metadata, 0) if metadata.parent != root else None
            issues.append(Issue(str(metadata), str(err), folder_id))
            continue
        for index, item in enumerate(items):
            try:
                rows.append(_parse_item(item, root, metadata, index))
            except (OSError, ValueError) as err:
                guess = _set_id(root, metadata.parent, metadata, index)
                issues.append(Issue(str(metadata), str(err), guess))
    frame = pd.DataFrame(rows, columns=set_table_schema().names)
    duplicated = frame["set_id"].duplicated(keep=False)
    for row in frame[duplicated].itertuples():
        issues.append(
            Issue(str(root / row.metadata_file), f"set id {row.set_id!r} is listed twice", row.set_id)
        )
    frame = frame[~duplicated].reset_index(drop=True)
    order = sorted(range(len(frame)), key=lambda i: _natural_key(frame.at[i, "set_id"]))
    frame = frame.iloc[order].reset_index(drop=True)
    if not len(frame) and not issues:
        raise FileNotFoundError(f"{root}: no metadata.json found (SynCD layout, see docs/data.md)")
    return SyncdIndex(frame, issues)
