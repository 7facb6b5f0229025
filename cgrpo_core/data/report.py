"""The filter's report: counts kept/removed per reason and per category, score summaries, histograms.

A set that could not be read (reader or scorer issue) counts as removed with reason ``unreadable``; the
report lists every such file with its reason.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cgrpo_core.data.config import FilterConfig
from cgrpo_core.data.filtering import REASONS
from cgrpo_core.data.syncd import Issue
from cgrpo_core.plots import plt

__all__ = ["filter_report", "image_aesthetics", "pair_values", "plot_filter_histograms", "report_metrics"]


def _summary(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {}
    q = np.quantile(values, [0.0, 0.25, 0.5, 0.75, 1.0])
    return dict(zip(("min", "q25", "median", "q75", "max"), map(float, q), strict=True)) | {
        "mean": float(values.mean())
    }


def pair_values(decisions: pd.DataFrame, kept: bool | None = None) -> np.ndarray:
    """Every upper-triangle pairwise score of the scored sets (optionally only kept / removed ones)."""
    rows = decisions if kept is None else decisions[decisions["kept"] == kept]
    out = [
        np.asarray([list(r) for r in d])[np.triu_indices(len(d), k=1)]
        for d in rows["dino_scores"]
        if d is not None
    ]
    return np.concatenate(out) if out else np.zeros(0)


def image_aesthetics(decisions: pd.DataFrame, kept: bool | None = None) -> np.ndarray:
    rows = decisions if kept is None else decisions[decisions["kept"] == kept]
    out = [np.asarray(list(a), dtype=float) for a in rows["aesthetics"] if a is not None]
    return np.concatenate(out) if out else np.zeros(0)


def filter_report(
    decisions: pd.DataFrame, issues: Iterable[Issue], cfg: FilterConfig, num_pairs: int
) -> dict:
    """Counts and score summaries of one filter pass (JSON-able)."""
    issues = list(issues)
    unreadable = sorted({i.set_id or i.path for i in issues})
    reasons = decisions["reason"].value_counts().to_dict()
    removed = {r: int(reasons.get(r, 0)) for r in REASONS if r != "kept"} | {"unreadable": len(unreadable)}
    by_category = {}
    for category, rows in decisions.groupby("category"):
        counts = rows["reason"].value_counts().to_dict()
        by_category[str(category)] = {
            "kept": int(counts.pop("kept", 0)),
            "removed": int(sum(counts.values())),
        }
        by_category[str(category)]["removed_by_reason"] = {k: int(v) for k, v in counts.items()}
    return {
        "sets_read": int(len(decisions)),
        "sets_unreadable": len(unreadable),
        "kept": int(decisions["kept"].sum()),
        "removed": int((~decisions["kept"]).sum()) + len(unreadable),
        "removed_by_reason": removed,
        "by_category": by_category,
        "training_pairs": int(num_pairs),
        "thresholds": cfg.model_dump(),
        "pairwise_identity": _summary(pair_values(decisions)),
        "aesthetic": _summary(image_aesthetics(decisions)),
        "issues": [i.as_dict() for i in issues],
    }


def plot_filter_histograms(decisions: pd.DataFrame, cfg: FilterConfig, title: str = "") -> Figure:
    """Pairwise identity scores and per-image aesthetic scores (kept vs removed sets), reasons as bars."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    pairs = [pair_values(decisions, True), pair_values(decisions, False)]
    if sum(len(p) for p in pairs):
        axes[0].hist(pairs, bins=40, stacked=True, color=["#2ca02c", "#d62728"], label=["kept", "removed"])
    for x in (cfg.dino_min, cfg.dino_max):
        axes[0].axvline(x, color="black", ls="--", lw=1)
    axes[0].set(xlabel="pairwise identity similarity", ylabel="pairs", title="identity consistency")
    aes = [image_aesthetics(decisions, True), image_aesthetics(decisions, False)]
    if sum(len(a) for a in aes):
        axes[1].hist(aes, bins=40, stacked=True, color=["#2ca02c", "#d62728"], label=["kept", "removed"])
    axes[1].axvline(cfg.aesthetic_min, color="black", ls="--", lw=1)
    axes[1].set(xlabel="aesthetic score", ylabel="images", title="aesthetic score")
    counts = decisions["reason"].value_counts()
    labels = [r for r in REASONS if r in counts]
    bars = axes[2].bar(labels, [int(counts[r]) for r in labels], color="#7f7f7f")
    axes[2].bar_label(bars, fontsize=8)
    axes[2].tick_params(axis="x", rotation=30)
    axes[2].set(ylabel="sets", title="decision per set")
    for ax in axes[:2]:
        if ax.get_legend_handles_labels()[1]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def report_metrics(report: dict) -> dict[str, float]:
    """The report's counts as flat MLflow metrics (sets_kept, removed_<reason>, <category>_kept, ...)."""
    metrics = {
        "sets_read": report["sets_read"],
        "sets_kept": report["kept"],
        "sets_removed": report["removed"],
        "training_pairs": report["training_pairs"],
    }
    metrics |= {f"removed_{reason}": n for reason, n in report["removed_by_reason"].items()}
    for category, counts in report["by_category"].items():
        metrics |= {f"{category}_kept": counts["kept"], f"{category}_removed": counts["removed"]}
    return {k: float(v) for k, v in metrics.items()}
