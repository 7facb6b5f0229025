"""Aggregate a model's per-image benchmark scores: means with cluster-bootstrap confidence intervals.

The input is the score table of one model (``scores.parquet``): one row per generated image with ``item``
(the item's position in protocol order), ``subject``, ``kind``, ``live``, ``image_index`` and one float
column per metric (``dino``, ``clip_i``, ``clip_t``, ``hpsv3``; the caller names them).

:func:`summarize` gives, for the whole benchmark and for each subject, prompt kind and subject type
(``object`` / ``live``), the mean over images and a percentile bootstrap interval. The bootstrap resamples
*items* with replacement, not images: the images of an item share a prompt and a reference and their
scores are correlated, so resampling images would give intervals that are too narrow. Each resample's
value is again the mean over its images (an item drawn twice counts its images twice).

Reproducibility: a group's resamples come from :func:`group_rng` (the seed and the group's name), so a
group's interval does not depend on which other groups or metrics exist, and all metrics of a group share
the same resampled items.

A NaN or infinite score is an error, not a value to skip: it means a broken image or a broken scorer, and
averaging it away would report a mean over fewer images than the table says.

Every metric is shown with the model that scores it (:func:`metric_label`): ``"DINO (facebook/dino-vits16)"``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "GROUPS",
    "KIND_ORDER",
    "METRIC_NAMES",
    "check_scores",
    "group_rng",
    "metric_label",
    "overall",
    "summarize",
    "summary_wide",
]

# metric key -> the paper's column name
METRIC_NAMES = {"dino": "DINO", "clip_i": "CLIP-I", "clip_t": "CLIP-T", "hpsv3": "HPS-v3"}
GROUPS = ("all", "subject", "kind", "subject_type")
KIND_ORDER = ("recontextualization", "accessorization", "property")
SCORE_COLUMNS = ("item", "subject", "kind", "live", "image_index")
SUMMARY_COLUMNS = ["group", "value", "metric", "label", "images", "items", "mean", "ci_low", "ci_high"]


def metric_label(metric: str, model_label: str) -> str:
    """``"HPS-v3 (toy HPSv3)"``: the paper's name of ``metric`` (the key itself if the paper has none)
    with the model that scores it."""
    if not model_label or not str(model_label).strip():
        raise ValueError(
            f"metric {metric!r} needs the label of the model that scores it (got {model_label!r})"
        )
    return f"{METRIC_NAMES.get(metric, metric)} ({model_label})"


def _labels(metrics: Sequence[str], model_labels: Mapping[str, str]) -> dict[str, str]:
    missing = [m for m in metrics if m not in model_labels]
    if missing:
        raise ValueError(f"model_labels has no entry for {missing}: give the scoring model of every metric")
    return {m: metric_label(m, model_labels[m]) for m in metrics}


def check_scores(scores: pd.DataFrame, metrics: Sequence[str]) -> None:
    """Raise a ValueError if ``scores`` is not one model's complete per-image table for ``metrics``."""
    if len(scores) == 0:
        raise ValueError("the score table is empty: score the benchmark images first")
    if not metrics:
        raise ValueError("give at least one metric column to summarize")
    missing = [c for c in (*SCORE_COLUMNS, *metrics) if c not in scores.columns]
    if missing:
        raise ValueError(f"the score table lacks the columns {missing} (has {list(scores.columns)})")
    if "model" in scores.columns and scores["model"].nunique() > 1:
        raise ValueError(
            f"the score table mixes models {sorted(scores['model'].unique())}: summarize one model at a time"
        )
    duplicated = int(scores.duplicated(["item", "image_index"]).sum())
    if duplicated:
        raise ValueError(f"{duplicated} rows repeat an (item, image_index) pair: each image must appear once")
    for metric in metrics:
        values = pd.to_numeric(scores[metric], errors="coerce").to_numpy(dtype=float)
        bad = int((~np.isfinite(values)).sum())
        if bad:
            raise ValueError(
                f"metric {metric!r}: {bad} of {len(values)} rows are NaN or not finite (a broken image or "
                "scorer); rescore those images instead of averaging them away"
            )


def group_rng(seed: int, group: str, value: str) -> np.random.Generator:
    """The bootstrap generator of one group (``group="subject", value="dog"``): a function of the seed
    and the group's name only."""
    digest = hashlib.sha256(f"{seed}\0{group}\0{value}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def _groups(scores: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(group, value, rows) for the whole table, each subject, kind and subject type, in a fixed order:
    subjects in protocol order, the paper's kinds first, ``object`` before ``live``."""
    ordered = scores.sort_values(["item", "image_index"], kind="stable")
    out: list[tuple[str, str, pd.DataFrame]] = [("all", "all", ordered)]
    for subject in dict.fromkeys(ordered["subject"]):
        out.append(("subject", str(subject), ordered[ordered["subject"] == subject]))
    present = set(ordered["kind"])
    kinds = [k for k in KIND_ORDER if k in present] + sorted(present - set(KIND_ORDER))
    out += [("kind", str(kind), ordered[ordered["kind"] == kind]) for kind in kinds]
    live = ordered["live"].astype(bool)
    for name, mask in (("object", ~live), ("live", live)):
        if mask.any():
            out.append(("subject_type", name, ordered[mask]))
    return out


def _bootstrap(
    sums: np.ndarray, counts: np.ndarray, n_boot: int, rng: np.random.Generator, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of the image mean over ``n_boot`` resamples of the items.

    ``sums``: (items, metrics) per-item score sums; ``counts``: (items,) images per item. The resampled
    items are ``rng.integers(0, items, size=(n_boot, items))``, one row per resample."""
    index = rng.integers(0, len(counts), size=(n_boot, len(counts)))
    images = counts[index].sum(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.empty(sums.shape[1]), np.empty(sums.shape[1])
    for k in range(sums.shape[1]):
        means = sums[index, k].sum(axis=1) / images
        low[k], high[k] = np.quantile(means, [tail, 1.0 - tail])
    return low, high


def summarize(
    scores: pd.DataFrame,
    metrics: Sequence[str],
    model_labels: Mapping[str, str],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Long table of means and item-bootstrap intervals (module docstring): one row per (group, value,
    metric) with the columns ``group, value, metric, label, images, items, mean, ci_low, ci_high``.

    Items are resampled in the order of their ``item`` number; see :func:`group_rng` for the draws."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    metrics = list(metrics)
    labels = _labels(metrics, model_labels)
    check_scores(scores, metrics)
    rows = []
    for group, value, part in _groups(scores):
        per_item = part.groupby("item", sort=True)[metrics]
        sums = per_item.sum().to_numpy(dtype=float)
        counts = per_item.size().to_numpy(dtype=float)
        means = part[metrics].to_numpy(dtype=float).mean(axis=0)
        low, high = _bootstrap(sums, counts, n_boot, group_rng(seed, group, value), level)
        for k, metric in enumerate(metrics):
            rows.append(
                {
                    "group": group,
                    "value": value,
                    "metric": metric,
                    "label": labels[metric],
                    "images": len(part),
                    "items": len(counts),
                    "mean": float(means[k]),
                    "ci_low": float(low[k]),
                    "ci_high": float(high[k]),
                }
            )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _all_rows(summary: pd.DataFrame) -> pd.DataFrame:
    rows = summary[summary["group"] == "all"]
    if rows.empty:
        raise ValueError("the summary has no 'all' group: pass the output of summarize()")
    return rows


def summary_wide(summary: pd.DataFrame) -> pd.DataFrame:
    """The ``all`` group of :func:`summarize` as one row (``summary.csv``): for each metric the columns
    ``<label>`` (the mean), ``<label> ci_low`` and ``<label> ci_high``, then ``images`` and ``items``."""
    rows = _all_rows(summary)
    wide: dict[str, float | int] = {}
    for row in rows.itertuples(index=False):
        wide[row.label] = row.mean
        wide[f"{row.label} ci_low"] = row.ci_low
        wide[f"{row.label} ci_high"] = row.ci_high
    wide["images"] = int(rows["images"].iloc[0])
    wide["items"] = int(rows["items"].iloc[0])
    return pd.DataFrame([wide])


def overall(summary: pd.DataFrame) -> dict[str, tuple[float, float, float]]:
    """metric -> (mean, ci_low, ci_high) of the ``all`` group: a point of the trade-off figure, and (its
    means) a measured row of a table."""
    rows = _all_rows(summary)
    return {
        r.metric: (float(r.mean), float(r.ci_low), float(r.ci_high)) for r in rows.itertuples(index=False)
    }
