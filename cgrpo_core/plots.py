"""Figures of the analysis tables (cgrpo_core/analysis.py) and of training curves; matplotlib, headless."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are only ever written to files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = [
    "plot_advantage_alignment",
    "plot_sars_cross_section",
    "plot_tdw_curves",
    "plot_training_curve",
    "save_figure",
]

COLORS = {"linear": "#7f7f7f", "sars": "#2ca02c", "min": "#1f77b4", "max": "#d62728", "harmonic": "#9467bd"}


def plot_sars_cross_section(table: pd.DataFrame, alpha: float, a_prompt: float) -> Figure:
    """Fig. 3: SARS (solid) vs linear (dashed) as a function of A_id at fixed A_prompt."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot(table["a_id"], table["linear"], "--", color=COLORS["linear"], label="linear (naive GRPO)")
    ax.plot(table["a_id"], table["sars"], "-", color=COLORS["sars"], lw=2, label=f"SARS (alpha={alpha:g})")
    ax.axvline(0.0, color="black", lw=0.6)
    ax.axhline(0.0, color="black", lw=0.6)
    ax.axvspan(table["a_id"].min(), 0.0, color="#d62728", alpha=0.06, label="conflict region")
    ax.axvspan(0.0, table["a_id"].max(), color="#2ca02c", alpha=0.06, label="synergy region")
    ax.set_xlabel("A_id")
    ax.set_ylabel("final advantage")
    ax.set_title(f"SARS cross-section at A_prompt = {a_prompt:g}")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def plot_tdw_curves(table: pd.DataFrame, w_max: float, w_min: float) -> Figure:
    """Fig. 6 (b): w_prompt per sampling step for each TDW preset, step 0 the noisiest."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    styles = {"paper": "-", "released": "--", "inverted": ":", "static": "-."}
    for name, rows in table.groupby("schedule", sort=False):
        ax.plot(rows["step"], rows["w_prompt"], styles.get(name, "-"), marker="o", ms=3, label=name)
    ax.axhline(w_max, color="black", lw=0.5, alpha=0.5)
    ax.axhline(w_min, color="black", lw=0.5, alpha=0.5)
    ax.set_xlabel("sampling step (0 = noisiest)")
    ax.set_ylabel("w_prompt   (w_id = 1 - w_prompt)")
    ax.set_title(f"TDW schedules (w_max={w_max:g}, w_min={w_min:g})")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_advantage_alignment(
    per_sample: pd.DataFrame, by_category: pd.DataFrame, stats: dict, title: str = ""
) -> Figure:
    """Fig. 7: (a) sign shares of (A_id, A_prompt), (b) mean final advantage per case, (c) the samples."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    labels = ["both_positive", "both_negative", "conflict", "neutral"]
    shares = [stats[k] for k in labels]
    bars = axes[0].bar(labels, shares, color=["#2ca02c", "#7f7f7f", "#d62728", "#c7c7c7"])
    axes[0].bar_label(bars, labels=[f"{s:.1%}" for s in shares], fontsize=8)
    axes[0].set_ylabel("share of samples")
    axes[0].set_title("(a) advantage alignment")
    axes[0].tick_params(axis="x", labelrotation=20)

    cats = by_category.dropna(subset=["linear"])
    x = range(len(cats))
    axes[1].bar([i - 0.2 for i in x], cats["linear"], 0.4, color=COLORS["linear"], label="naive (linear)")
    axes[1].bar([i + 0.2 for i in x], cats["sars"], 0.4, color=COLORS["sars"], label="SARS")
    axes[1].set_xticks(list(x), cats["category"], rotation=20)
    axes[1].axhline(0.0, color="black", lw=0.6)
    axes[1].set_ylabel("mean final advantage")
    axes[1].set_title("(b) final advantage per case")
    axes[1].legend(fontsize=8)

    delta = per_sample["sars"] - per_sample["linear"]
    sc = axes[2].scatter(
        per_sample["a_id"], per_sample["a_prompt"], c=delta, cmap="RdYlGn", s=6, vmin=-0.6, vmax=0.6
    )
    axes[2].axhline(0.0, color="black", lw=0.6)
    axes[2].axvline(0.0, color="black", lw=0.6)
    axes[2].set_xlabel("A_id")
    axes[2].set_ylabel("A_prompt")
    axes[2].set_title("(c) samples, colour = SARS - linear")
    fig.colorbar(sc, ax=axes[2])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path, dpi: int = 120):
    """Write ``fig`` as PNG atomically (temp file, then rename) and close it."""
    from cgrpo_core.store import atomic_write

    try:
        with atomic_write(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return path


def plot_training_curve(curve: list[tuple[int, float]], title: str, ylabel: str = "training loss") -> Figure:
    """Loss per step (thin) and its moving average (thick), log scale."""
    if not curve:
        raise ValueError(f"{title}: the training curve is empty")
    steps = np.array([s for s, _ in curve])
    loss = np.array([v for _, v in curve])
    window = max(1, len(loss) // 50)
    smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(steps, loss, lw=0.6, alpha=0.4, color="#1f77b4", label="per step")
    ax.plot(steps[window - 1 :], smooth, lw=2, color="#1f77b4", label=f"moving average ({window} steps)")
    ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_step_metrics(
    history: list[tuple[int, dict[str, float]]], panels: dict[str, list[str]], title: str
) -> Figure:
    """One panel per entry of ``panels`` (panel title -> metric names), each metric against the optimiser
    step: ``history`` is ``[(step, metrics)]``; metrics a step did not log (held-out checks) are skipped."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (panel, names) in zip(axes[0], panels.items(), strict=True):
        for name in names:
            points = [(step, m[name]) for step, m in history if name in m]
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, marker="o" if len(points) < 15 else None, ms=3, lw=1.2, label=name)
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("optimiser step")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
