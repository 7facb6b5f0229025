"""Generate and score a benchmark's images: planned, in fixed units of work, resumable, shardable.

The plan (:func:`plan_images`) is one row per image: the item (subject, class, prompt, its kind, the
conditioning reference), the image's index within the item, its seed (:func:`generation.image_seed`, the
same for every model) and its file name ``images/<item>_<index>.png``. It depends on no weights.

The work is cut into units of ``batch_size // images_per_item`` consecutive items (:func:`work_units`).
Each unit is one transformer batch: its images are generated (only those missing on disk), written one
by one (temporary name, then rename: a file under its final name is a whole image), then scored all
together, and the unit's scores are kept as ``parts/<first>-<stop>.parquet`` (written atomically). A killed
run, run again, skips the units that have a part and the images that exist, so nothing finished is
generated or scored twice.

Exact reproduction. On a CPU a sample can differ by one grey level with the batch size that made it
(the kernels depend on it), so a unit whose images were partly written when its run was killed generates
the missing ones in a batch of the unit's full size (the missing requests, repeated): every image is
made in a batch of its unit's size whichever run makes it, and the scores of a resumed run equal an
uninterrupted run's. Scoring is per unit too, so it never depends on the other units.

With several processes (:class:`~cgrpo_core.training.distributed.Dist`) process r takes units r, r + W,
r + 2W, ...; a unit is the same work whichever process does it. Rank 0 gathers every process's scores and
:func:`check_scores` proves that every planned image was scored exactly once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from cgrpo_core.evaluation.generation import BenchItem, generate_images, image_seed
from cgrpo_core.policy import Policy, SamplerConfig
from cgrpo_core.rewards.base import RewardBatch
from cgrpo_core.rewards.registry import RewardSet
from cgrpo_core.store import atomic_write
from cgrpo_core.training.distributed import SINGLE_PROCESS, Dist

__all__ = [
    "PLAN_COLUMNS",
    "check_scores",
    "evaluate_images",
    "load_references",
    "plan_images",
    "work_units",
]

PLAN_COLUMNS = (
    "item",
    "subject",
    "class_name",
    "live",
    "prompt_index",
    "kind",
    "prompt",
    "reference",
    "image_index",
    "seed",
    "file_name",
    "model",
    "row",
)
PARTS = "parts"


def plan_images(
    items: Sequence[BenchItem], images_per_item: int, seed: int, model: str = "", row: str = ""
) -> pd.DataFrame:
    """One row per planned image (module docstring), items in protocol order."""
    if not items:
        raise ValueError("the benchmark has no items: check its prompts file and subject folders")
    seen: dict[tuple[str, str], int] = {}
    for i, item in enumerate(items):
        first = seen.setdefault((item.subject, item.prompt), i)
        if first != i:
            raise ValueError(f"items {first} and {i} are both ({item.subject!r}, {item.prompt!r})")
    records = [
        {
            "item": i,
            "subject": item.subject,
            "class_name": item.class_name,
            "live": item.live,
            "prompt_index": item.prompt_index,
            "kind": item.kind,
            "prompt": item.prompt,
            "reference": str(item.reference),
            "image_index": k,
            "seed": image_seed(seed, item, k),
            "file_name": f"images/{i:04d}_{k}.png",
            "model": model,
            "row": row,
        }
        for i, item in enumerate(items)
        for k in range(images_per_item)
    ]
    return pd.DataFrame.from_records(records, columns=list(PLAN_COLUMNS))


def work_units(n_items: int, items_per_unit: int) -> list[tuple[int, int]]:
    """``[(first item, stop item), ...]`` covering ``range(n_items)`` in order."""
    if items_per_unit < 1:
        raise ValueError(f"items_per_unit must be >= 1, got {items_per_unit}")
    return [(start, min(start + items_per_unit, n_items)) for start in range(0, n_items, items_per_unit)]


def _open(path: Path, what: str) -> Image.Image:
    try:
        with Image.open(path) as handle:
            return handle.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{what} {path} is not a readable image ({err}): replace or delete it") from None


def load_references(subject_files: Mapping[str, Sequence[str | Path]]) -> dict[str, list[Image.Image]]:
    """Every photo of every subject, opened once (a missing or corrupt photo: an error naming it)."""
    out = {}
    for subject, files in subject_files.items():
        if not files:
            raise ValueError(f"subject {subject!r} has no reference photos")
        out[subject] = [_open(Path(f), f"reference photo of {subject!r}") for f in files]
    return out


def _save_png(image: Image.Image, path: Path) -> None:
    """Write ``path`` whole or not at all (temporary name, then rename; no fsync: a kill, not a power
    loss, is what a resumed run must survive)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)


def _generate_unit(
    policy: Policy,
    rows: pd.DataFrame,
    items: Sequence[BenchItem],
    folder: Path,
    settings: SamplerConfig,
    seed: int,
) -> int:
    """Generate the unit's missing images (in a batch of the unit's size); returns how many."""
    missing = [r for r in rows.itertuples() if not (folder / r.file_name).is_file()]
    if not missing:
        return 0
    padded = [missing[k % len(missing)] for k in range(len(rows))]
    requests = [(items[r.item], r.image_index) for r in padded]
    images = generate_images(policy, requests, settings, seed, batch_size=len(rows))
    for r, image in zip(missing, images, strict=False):  # the first len(missing) are the missing ones
        _save_png(image, folder / r.file_name)
    return len(missing)


def _score_unit(
    metrics: RewardSet,
    names: Sequence[str],
    rows: pd.DataFrame,
    folder: Path,
    references: Mapping[str, list[Image.Image]],
) -> pd.DataFrame:
    images = [_open(folder / f, "generated image") for f in rows["file_name"]]
    batch = RewardBatch(
        images,
        references=[references[s] for s in rows["subject"]],
        prompts=list(rows["prompt"]),
        subjects=list(rows["class_name"]),
    )
    scores = metrics.score(names, batch)
    out = rows.reset_index(drop=True).copy()
    for name in names:
        out[name] = scores[name].double().cpu().numpy()
    return out


def evaluate_images(
    policy: Policy | None,
    metrics: RewardSet,
    names: Sequence[str],
    plan: pd.DataFrame,
    items: Sequence[BenchItem],
    references: Mapping[str, list[Image.Image]],
    folder: str | Path,
    settings: SamplerConfig,
    seed: int,
    batch_size: int,
    dist: Dist = SINGLE_PROCESS,
    progress: bool = True,
    timings: dict[str, float] | None = None,
) -> pd.DataFrame | None:
    """Generate and score this process's units of ``plan`` in ``folder``; on rank 0 return every
    process's scores (plan columns + one column per metric), sorted and checked; None on other ranks.

    ``policy`` may be None when every planned image exists (scoring only). ``timings`` (if given) gains
    this process's ``generate_s``, ``score_s`` and ``generated`` (images) of this call."""
    timings = {} if timings is None else timings
    for name in ("generate_s", "score_s", "generated"):
        timings.setdefault(name, 0.0)
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / PARTS).mkdir(exist_ok=True)
    per_item = int(plan.groupby("item").size().max())
    units = work_units(len(items), max(1, batch_size // per_item))
    mine = units[dist.rank :: dist.world]
    frames = []
    generated = 0
    bar = tqdm(
        mine, desc=f"evaluate (rank {dist.rank})" if dist.world > 1 else "evaluate", disable=not progress
    )
    for start, stop in bar:
        part = folder / PARTS / f"{start:05d}-{stop:05d}.parquet"
        if part.is_file():
            frames.append(pd.read_parquet(part))
            continue
        rows = plan[(plan["item"] >= start) & (plan["item"] < stop)]
        if policy is None and any(not (folder / f).is_file() for f in rows["file_name"]):
            raise ValueError(f"items {start}-{stop - 1} have images to generate but no policy was given")
        clock = time.perf_counter()
        if policy is not None:
            generated += _generate_unit(policy, rows, items, folder, settings, seed)
        timings["generate_s"] += time.perf_counter() - clock
        clock = time.perf_counter()
        frame = _score_unit(metrics, names, rows, folder, references)
        timings["score_s"] += time.perf_counter() - clock
        with atomic_write(part, "wb") as handle:
            frame.to_parquet(handle, index=False)
        frames.append(frame)
        bar.set_postfix(generated=generated)
    timings["generated"] += generated
    mine_frame = pd.concat(frames, ignore_index=True) if frames else plan.iloc[:0]
    gathered = dist.gather_objects(mine_frame)
    if gathered is None:
        return None
    scores = pd.concat(gathered, ignore_index=True).sort_values(["item", "image_index"], ignore_index=True)
    check_scores(plan, scores, names)
    return scores


def check_scores(plan: pd.DataFrame, scores: pd.DataFrame, names: Sequence[str]) -> None:
    """Every planned image scored exactly once, with finite scores (else a ValueError saying which)."""
    key = ["item", "image_index"]
    duplicated = scores[scores.duplicated(key, keep=False)]
    if len(duplicated):
        raise ValueError(
            f"{len(duplicated)} scored images appear more than once, e.g. {duplicated.iloc[0][key].to_dict()}"
        )
    planned = set(map(tuple, plan[key].to_numpy().tolist()))
    got = set(map(tuple, scores[key].to_numpy().tolist()))
    if planned - got:
        raise ValueError(
            f"{len(planned - got)} planned images were not scored, e.g. (item, index) {min(planned - got)}"
        )
    if got - planned:
        raise ValueError(f"{len(got - planned)} scored images were not planned, e.g. {min(got - planned)}")
    for name in names:
        bad = ~np.isfinite(scores[name].to_numpy(dtype=float))
        if bad.any():
            raise ValueError(
                f"metric {name}: {int(bad.sum())} images have a non-finite score, "
                f"e.g. {scores.loc[bad, 'file_name'].iloc[0]}"
            )
