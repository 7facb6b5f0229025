"""The numbers of a human evaluation's import (:mod:`cgrpo_core.evaluation.human` reads and checks the
answers): win / tie / loss shares with Wilson intervals, agreement between annotators (Fleiss' kappa), the
correlation of each metric with the human preferences, and Fig. 5 beside the paper's bars. Every definition
is in :mod:`cgrpo_core.evaluation.human`'s docstring and docs/human_eval.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: figures are only ever written to files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cgrpo_core.evaluation.aggregate import metric_label  # noqa: E402
from cgrpo_core.evaluation.human import (  # noqa: E402
    ANSWERS,
    CRITERIA,
    OUTCOMES,
    PAPER_CRITERIA,
    PAPER_FIGURE5,
    RESULT_COLUMNS,
    SHOWN,
    TABLE6_NAMES,
    Answer,
)
from cgrpo_core.evaluation.tables import paper_table  # noqa: E402

__all__ = ["Z95", "analyse", "figure5", "fleiss", "pearson", "spearman", "wilson_interval"]

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson_interval(share: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a share observed on ``n`` units (NaN for n = 0)."""
    if n <= 0 or math.isnan(share):
        return math.nan, math.nan
    denominator = 1.0 + z * z / n
    centre = (share + z * z / (2 * n)) / denominator
    half = z * math.sqrt(share * (1.0 - share) / n + z * z / (4 * n * n)) / denominator
    # at a share of 0 or 1 the bound is exactly 0 or 1 (rounding would leave 1e-17)
    return (0.0 if share == 0 else centre - half), (1.0 if share == 1 else centre + half)


def fleiss(counts: np.ndarray) -> tuple[float, float]:
    """(raw agreement, Fleiss' kappa) of ``counts`` (pairs, answers): how many annotators gave each
    answer to each pair, every pair with at least two. Raw agreement P = mean over pairs of
    sum_j n_ij (n_ij - 1) / (n_i (n_i - 1)); kappa = (P - Pe) / (1 - Pe), Pe = sum_j p_j^2 with p_j the
    pooled share of answer j (NaN when there are no pairs or Pe = 1)."""
    counts = np.asarray(counts, dtype=float)
    if len(counts) == 0:
        return math.nan, math.nan
    per_pair = counts.sum(axis=1)  # (pairs,)
    observed = float(((counts * (counts - 1)).sum(axis=1) / (per_pair * (per_pair - 1))).mean())
    expected = float(((counts.sum(axis=0) / counts.sum()) ** 2).sum())
    return observed, (observed - expected) / (1 - expected) if expected < 1 else math.nan


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's r (NaN with fewer than 3 points or a constant side)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    xc, yc = x - x.mean(), y - y.mean()
    norm = math.sqrt(float((xc**2).sum() * (yc**2).sum()))
    return float((xc * yc).sum() / norm) if len(x) >= 3 and norm > 0 else math.nan


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson's r of the ranks, tied values given their average rank."""
    return pearson(pd.Series(x).rank(method="average"), pd.Series(y).rank(method="average"))


def _preferences(answers: Sequence[Answer], key: Mapping[str, Any]) -> pd.DataFrame:
    """One row per (answer, criterion): ``shown`` (+1 A preferred, 0 tie, -1 B) and ``a_pref`` (the same
    for row a)."""
    sides = {p["pair_id"]: p["a_side"] for p in key["pairs"]}
    return pd.DataFrame(
        [
            {
                "pair_id": ans.pair_id,
                "annotator": ans.annotator,
                "criterion": c,
                "answer": getattr(ans, c),
                "shown": SHOWN[getattr(ans, c)],
                "a_pref": SHOWN[getattr(ans, c)] * (1 if sides[ans.pair_id] == "A" else -1),
            }
            for ans in answers
            for c in CRITERIA
        ]
    )


def _shares(prefs: pd.DataFrame) -> pd.DataFrame:
    paper = pd.read_csv(PAPER_FIGURE5).set_index("criterion")
    paper_columns = {"a_wins": "customized_grpo_wins", "tie": "tie", "b_wins": "uno_base_wins"}
    rows = []
    for criterion in CRITERIA:
        part = prefs[prefs["criterion"] == criterion]
        pairs = part["pair_id"].nunique()
        for outcome, code in OUTCOMES.items():
            share = float((part["a_pref"] == code).mean())
            low, high = wilson_interval(share, pairs)
            rows.append(
                {
                    "criterion": criterion,
                    "outcome": outcome,
                    "share": share,
                    "ci_low": low,
                    "ci_high": high,
                    "answers": len(part),
                    "pairs": pairs,
                    "paper": float(paper.loc[PAPER_CRITERIA[criterion], paper_columns[outcome]]),
                }
            )
    return pd.DataFrame(rows)


def _agreement(prefs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for criterion in CRITERIA:
        part = prefs[prefs["criterion"] == criterion]
        counts = pd.crosstab(part["pair_id"], part["answer"]).reindex(columns=list(ANSWERS), fill_value=0)
        counts = counts[counts.sum(axis=1) >= 2].to_numpy()
        raw, kappa = fleiss(counts)
        note = "" if len(counts) else "no pair has answers from two annotators"
        rows.append(
            {
                "criterion": criterion,
                "annotators": part["annotator"].nunique(),
                "pairs": len(counts),
                "answers": int(counts.sum()),
                "raw_agreement": raw,
                "fleiss_kappa": kappa,
                "note": note,
            }
        )
    return pd.DataFrame(rows)


def _correlations(prefs: pd.DataFrame, key: Mapping[str, Any]) -> pd.DataFrame:
    paper = paper_table(6).set_index("reward_model")
    prefix = {"identity": "id", "prompt": "prompt"}
    shown = {}  # pair -> metric -> score(A) - score(B)
    for p in key["pairs"]:
        first, second = ("a", "b") if p["a_side"] == "A" else ("b", "a")
        shown[p["pair_id"]] = {m: p["scores"][first][m] - p["scores"][second][m] for m in key["metrics"]}
    rows = []
    for criterion in CRITERIA:
        human = prefs[prefs["criterion"] == criterion].groupby("pair_id", sort=True)["shown"].mean()
        for metric, model in key["metrics"].items():
            diff = [shown[pair][metric] for pair in human.index]
            name = TABLE6_NAMES.get(metric)
            cited = paper.loc[name] if name in paper.index else None
            rows.append(
                {
                    "criterion": criterion,
                    "metric": metric,
                    "label": metric_label(metric, model),
                    "pairs": len(human),
                    "pearson": pearson(diff, human),
                    "spearman": spearman(diff, human),
                    "paper_pearson": math.nan
                    if cited is None
                    else float(cited[f"{prefix[criterion]}_pearson"]),
                    "paper_spearman": math.nan
                    if cited is None
                    else float(cited[f"{prefix[criterion]}_spearman"]),
                }
            )
    return pd.DataFrame(rows)


def analyse(answers: Sequence[Answer], key: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """The study's results from checked answers: ``results`` (criterion, a_wins, tie, b_wins, n),
    ``figure5`` (each share with its CI and the paper's), ``agreement`` and ``correlations``."""
    prefs = _preferences(answers, key)
    shares = _shares(prefs)
    results = shares.pivot(index="criterion", columns="outcome", values="share").reindex(list(CRITERIA))
    results = results.reset_index().assign(
        n=shares.groupby("criterion")["answers"].first().reindex(list(CRITERIA)).to_numpy()
    )
    return {
        "results": results[RESULT_COLUMNS],
        "figure5": shares,
        "agreement": _agreement(prefs),
        "correlations": _correlations(prefs, key),
    }


def _bar(ax, y: float, shares: Sequence[float], colors: Sequence[str], alpha: float) -> None:
    """One stacked bar (wins of the first model | tie | wins of the second) with its percentages."""
    left = 0.0
    for width, color in zip(shares, colors, strict=True):
        ax.barh(y, width, left=left, height=0.6, color=color, alpha=alpha, edgecolor="white")
        if width >= 0.06:
            ax.text(left + width / 2, y, f"{width:.0%}", ha="center", va="center", fontsize=8)
        left += width


def figure5(shares: pd.DataFrame, labels: Mapping[str, str]) -> Figure:
    """Fig. 5 beside the paper's: per criterion, row a wins / tie / row b wins as a stacked bar, the 95%
    CIs of the two win shares as whiskers along its top and bottom edges, and the paper's bar
    (Customized-GRPO vs UNO base) below it. ``labels``: "a"/"b" -> the rows' names."""
    colors = ("#3a7d44", "#b8b8b8", "#c0504d")
    fig, ax = plt.subplots(figsize=(9, 3.8))
    ticks, names = [], []
    for k, criterion in enumerate(CRITERIA):
        part = shares[shares["criterion"] == criterion].set_index("outcome").reindex(list(OUTCOMES))
        y = 2.6 * k
        _bar(ax, y, part["share"].tolist(), colors, 1.0)
        _bar(ax, y + 0.8, part["paper"].tolist(), colors, 0.5)
        a, b = part.loc["a_wins"], part.loc["b_wins"]
        for x, low, high, edge in (
            (a["share"], a["ci_low"], a["ci_high"], y - 0.38),  # row a's wins: along the top edge
            (1 - b["share"], 1 - b["ci_high"], 1 - b["ci_low"], y + 0.38),  # row b's: the bottom edge
        ):
            ax.errorbar([x], [edge], xerr=[[x - low], [high - x]], fmt="none", ecolor="black", capsize=3)
        ticks += [y, y + 0.8]
        names += [
            f"{criterion}: {labels['a']} vs {labels['b']}",
            f"{criterion}: paper, Customized-GRPO vs UNO (Base)",
        ]
    ax.set_yticks(ticks, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of answers; whiskers: 95% Wilson CIs of the two win shares")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors]
    fig.legend(
        handles, ["first model wins", "tie", "second model wins"], loc="lower center", ncol=3, fontsize=8
    )
    ax.set_title("Human evaluation (Fig. 5)")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig
