"""Figures of the benchmark results: Fig. 1's identity-vs-prompt trade-off, Fig. 2's training curves and
a sample grid read back from a model's scored images. matplotlib, headless; the functions return the
figure (or image) and the caller writes it (:func:`cgrpo_core.plots.save_figure`).

The sample grid shows the images the scores were computed on (``scores.parquet`` names each image's
file), for a fixed choice of items (:func:`grid_rows`): the same items for every model of a run, so grids
of two models compare row by row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures are only ever written to files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from cgrpo_core.evaluation.aggregate import KIND_ORDER, metric_label  # noqa: E402
from cgrpo_core.evaluation.grid import grid_image  # noqa: E402

__all__ = ["TRADEOFF_PANELS", "curves_figure", "grid_rows", "sample_grid_from_scores", "tradeoff_figure"]

# Fig. 1's panels: (identity metric on x, prompt metric on y)
TRADEOFF_PANELS = (("dino", "hpsv3"), ("clip_i", "clip_t"))
SMOOTH_AFTER = 20  # curves longer than this many steps get a moving average


def _error(point: tuple[float, float, float]) -> list[list[float]]:
    mean, low, high = point
    return [[max(mean - low, 0.0)], [max(high - mean, 0.0)]]


def tradeoff_figure(
    points: Mapping[str, Mapping[str, tuple[float, float, float]]],
    model_labels: Mapping[str, str],
    title: str = "identity vs prompt following",
) -> Figure:
    """Fig. 1: DINO vs HPS-v3 and CLIP-I vs CLIP-T, one marker per model (``points``: name -> metric ->
    (mean, ci_low, ci_high)) with its interval in both directions and its name. A model that lacks one of
    a panel's metrics is left out of that panel."""
    if not points:
        raise ValueError("give at least one model's (mean, ci_low, ci_high) per metric")
    missing = sorted({m for panel in TRADEOFF_PANELS for m in panel} - set(model_labels))
    if missing:
        raise ValueError(f"model_labels has no entry for {missing}: give the scoring model of every metric")
    fig, axes = plt.subplots(1, len(TRADEOFF_PANELS), figsize=(6 * len(TRADEOFF_PANELS), 4.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (x_metric, y_metric) in zip(axes, TRADEOFF_PANELS, strict=True):
        for k, (name, metrics) in enumerate(points.items()):
            if x_metric not in metrics or y_metric not in metrics:
                continue
            x, y = metrics[x_metric], metrics[y_metric]
            color = colors[k % len(colors)]
            ax.errorbar(
                x[0], y[0], xerr=_error(x), yerr=_error(y), fmt="o", ms=6, capsize=3, color=color, label=name
            )
            ax.annotate(name, (x[0], y[0]), textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax.set_xlabel(f"{metric_label(x_metric, model_labels[x_metric])}  (identity)")
        ax.set_ylabel(f"{metric_label(y_metric, model_labels[y_metric])}  (prompt)")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def curves_figure(
    histories: Mapping[str, Sequence[Mapping[str, float]]],
    keys: Sequence[str],
    title: str,
    starts: Mapping[str, Mapping[str, float]] | None = None,
) -> Figure:
    """Fig. 2: one panel per step-metric key (``reward/dino_seg_mean``), one line per row (``histories``:
    name -> step metrics, step 1 first; ``starts``: name -> metrics before the first step, drawn at step
    0, such as the first held-out check). A curve of more than 20 steps is drawn thin with its moving
    average (window: a tenth of the steps) on top. A key logged at most every other step (a held-out check)
    is drawn as its points joined; elsewhere steps that did not log a key are gaps."""
    if not keys:
        raise ValueError("give at least one step-metric key to plot")
    if not histories:
        raise ValueError("give at least one row's history")
    fig, axes = plt.subplots(1, len(keys), figsize=(4.6 * len(keys), 3.8), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key in zip(axes[0], keys, strict=True):
        for k, (name, history) in enumerate(histories.items()):
            values = pd.Series([float(step.get(key, np.nan)) for step in history], dtype=float)
            steps = np.arange(1, len(values) + 1)
            start = (starts or {}).get(name, {})
            if key in start:
                values = pd.concat([pd.Series([float(start[key])]), values], ignore_index=True)
                steps = np.arange(0, len(values))
            if values.isna().all():
                continue
            color = colors[k % len(colors)]
            if values.notna().sum() <= len(values) // 2 + 1:  # sparse: a check every few steps
                known = values.notna().to_numpy()
                ax.plot(steps[known], values[known], marker="o", ms=3, lw=1.2, color=color, label=name)
            elif len(values) > SMOOTH_AFTER:
                smooth = values.rolling(max(2, len(values) // 10), min_periods=1).mean()
                ax.plot(steps, values, lw=0.6, alpha=0.35, color=color)
                ax.plot(steps, smooth, lw=1.8, color=color, label=name)
            else:
                ax.plot(steps, values, marker="o", ms=3, lw=1.2, color=color, label=name)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("optimiser step")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def grid_rows(scores: pd.DataFrame, items_per_kind: int = 2) -> list[int]:
    """The ``item`` numbers of a sample grid: ``items_per_kind`` items of each prompt kind (the paper's
    kind order), of subjects spread over the protocol and interleaved between kinds, so that with enough
    subjects no subject appears twice. Depends on the items only, not on the scores."""
    if items_per_kind < 1:
        raise ValueError(f"items_per_kind must be >= 1, got {items_per_kind}")
    items = scores.drop_duplicates("item").sort_values("item")
    present = set(items["kind"])
    kinds = [k for k in KIND_ORDER if k in present] + sorted(present - set(KIND_ORDER))
    rows = items_per_kind * len(kinds)
    chosen: list[int] = []
    for j, kind in enumerate(kinds):
        own = items[items["kind"] == kind]
        subjects = list(dict.fromkeys(own["subject"]))
        for i in range(items_per_kind):
            subject = subjects[(j + i * len(kinds)) * len(subjects) // rows]
            candidates = own[own["subject"] == subject]["item"].tolist()
            item = int(candidates[(i + j) % len(candidates)])
            if item not in chosen:
                chosen.append(item)
    return chosen


def _load(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def sample_grid_from_scores(
    scores: pd.DataFrame,
    folder: str | Path,
    references: Mapping[str, str | Path],
    items_per_kind: int = 2,
    tile: int = 128,
) -> Image.Image:
    """A grid of the scored images (:func:`cgrpo_core.evaluation.grid.grid_image`): for each item of
    :func:`grid_rows`, its subject's reference, its prompt and its images in ``image_index`` order, read
    from ``folder / file_name``. ``references``: subject -> reference image path."""
    if len(scores) == 0:
        raise ValueError("the score table is empty: nothing to show")
    missing = [
        c for c in ("item", "subject", "kind", "prompt", "image_index", "file_name") if c not in scores
    ]
    if missing:
        raise ValueError(f"the score table lacks the columns {missing}")
    if "model" in scores.columns and scores["model"].nunique() > 1:
        raise ValueError("the score table mixes models: make one grid per model")
    folder = Path(folder)
    chosen = grid_rows(scores, items_per_kind)
    lacking = sorted({str(s) for s in scores[scores["item"].isin(chosen)]["subject"]} - set(references))
    if lacking:
        raise ValueError(f"no reference image given for the subjects {lacking}")
    refs, prompts, samples = [], [], []
    for item in chosen:
        rows = scores[scores["item"] == item].sort_values("image_index")
        first = rows.iloc[0]
        refs.append(_load(Path(references[first["subject"]])))
        prompts.append(str(first["prompt"]))
        samples.append([_load(folder / name) for name in rows["file_name"]])
    return grid_image(refs, prompts, samples, tile)
