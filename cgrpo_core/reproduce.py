"""What ``reproduce-paper`` reproduces: the paper's results as targets, the rows each one needs, the mean of a
row over seeds, and the paper's qualitative claims with a verdict from measured intervals.

Targets (:data:`TARGETS`): ``table-1`` ... ``table-5``, ``table-7`` (quality tables: their registry rows
trained and evaluated), ``table-8`` (compute: the trainers' step times of Table 2's rows), ``figure-2``
(training curves of naive 1:1, naive 1:1.5 and Customized-GRPO), ``figure-3``, ``figure-6``, ``figure-7``
(the analysis figures: no training). Table 6 and Figure 5 come from a human evaluation's imported answers
(``flows.human_eval``), not from a deployment. ``all`` is every target.

A row's number over seeds (:func:`combine_seeds`): one seed, the evaluation's own mean and 95% bootstrap
interval over items; n >= 2 seeds, the mean of the seeds' means and a 95% t-interval over them (the spread
a rerun with a new seed shows).

A claim (:data:`CLAIMS`) is a set of signed differences between two measured rows (or the mean of several
such differences), each with a 95% interval (:func:`difference`). Verdict: ``supported`` when every
interval lies on the claimed side of 0, ``contradicted`` when one lies on the other side, else
``inconclusive``; ``not measured`` while a row is missing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats

from cgrpo_core.rows import Row, get_row, not_run_reason, rows_of_table

__all__ = [
    "CLAIMS",
    "TARGETS",
    "Claim",
    "Condition",
    "Target",
    "combine_seeds",
    "difference",
    "evaluate_claim",
    "expand_target",
    "target_rows",
]

Point = tuple[float, float, float]  # (mean, ci_low, ci_high)
Measured = Mapping[str, Sequence[Mapping[str, Point]]]  # row -> one {metric: point} per seed, seed order
Z95 = 1.959963984540054

QUALITY = (1, 2, 3, 4, 5, 7)
FIGURE_2_ROWS = ("table-2/naive-1-1", "table-2/naive-1-1.5", "table-2/customized-grpo")
COMPUTE_ROWS = ("table-2/sft", "table-2/naive-1-1.5", "table-2/customized-grpo")


@dataclass(frozen=True)
class Target:
    """One result of the paper: what kind it is and what it needs."""

    name: str
    title: str
    kind: str  # "quality" (rows trained and evaluated), "compute"/"curves" (rows trained), "analysis"

    @property
    def evaluates(self) -> bool:
        return self.kind == "quality"


TARGETS: dict[str, Target] = {
    **{f"table-{n}": Target(f"table-{n}", f"Table {n}", "quality") for n in QUALITY},
    "table-8": Target("table-8", "Table 8 (compute)", "compute"),
    "figure-2": Target("figure-2", "Figure 2 (training curves)", "curves"),
    "figure-3": Target("figure-3", "Figure 3 (SARS cross-section)", "analysis"),
    "figure-6": Target("figure-6", "Figure 6 (TDW schedules)", "analysis"),
    "figure-7": Target("figure-7", "Figure 7 (advantage alignment)", "analysis"),
}


def expand_target(target: str) -> list[Target]:
    """``all`` -> every target; a target's name -> it; anything else a ValueError listing the names."""
    if target == "all":
        return list(TARGETS.values())
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose all or one of {', '.join(TARGETS)}")
    return [TARGETS[target]]


def target_rows(target: Target) -> list[Row]:
    """The rows ``target`` trains (and, for a quality table, evaluates), in registry order; rows that are
    not run here (external baselines, judge rows without an endpoint) are left out."""
    if target.kind == "quality":
        rows = rows_of_table(int(target.name.split("-")[1]))
    elif target.kind == "compute":
        rows = [get_row(r) for r in COMPUTE_ROWS]
    elif target.kind == "curves":
        rows = [get_row(r) for r in FIGURE_2_ROWS]
    else:
        rows = []
    return [row for row in rows if not_run_reason(row) is None]


def combine_seeds(per_seed: Sequence[Mapping[str, Point]]) -> dict[str, Point]:
    """A row's (mean, low, high) per metric over its seeds (module docstring); metrics every seed has."""
    if not per_seed:
        raise ValueError("give at least one seed's measurement")
    if len(per_seed) == 1:
        return {m: tuple(map(float, p)) for m, p in per_seed[0].items()}
    metrics = set.intersection(*(set(s) for s in per_seed))
    out = {}
    for metric in sorted(metrics):
        means = [float(s[metric][0]) for s in per_seed]
        mean, half = _t_interval(means)
        out[metric] = (mean, mean - half, mean + half)
    return out


def _t_interval(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)


def _se(point: Point) -> float:
    return (point[2] - point[1]) / (2 * Z95)


def difference(
    measured: Measured, pairs: Sequence[tuple[str, str]], metric: str
) -> tuple[float, float, float, int]:
    """Mean over ``pairs`` of (a - b) in ``metric``, with its 95% interval and the number of seeds used.

    n >= 2 seeds common to the trained rows: the per-seed mean differences and a t-interval over seeds
    (paired by seed); a row measured once (the untrained base model, which has no training seed) stands
    beside every seed. One seed everywhere: the rows' bootstrap intervals as independent normal errors,
    se = sqrt(sum se^2) / k over the k pairs (conservative: two rows share prompts and noise, so their
    errors correlate)."""
    rows = {r for pair in pairs for r in pair}
    counts = [len(measured[r]) for r in rows]
    seeds = min([n for n in counts if n > 1], default=1)

    def at(row: str, seed: int) -> float:
        per_seed = measured[row]
        return per_seed[0 if len(per_seed) == 1 else seed][metric][0]

    if seeds >= 2:
        per_seed = [sum(at(a, s) - at(b, s) for a, b in pairs) / len(pairs) for s in range(seeds)]
        mean, half = _t_interval(per_seed)
        return mean, mean - half, mean + half, seeds
    diffs = [measured[a][0][metric][0] - measured[b][0][metric][0] for a, b in pairs]
    se = math.sqrt(sum(_se(measured[a][0][metric]) ** 2 + _se(measured[b][0][metric]) ** 2 for a, b in pairs))
    mean, half = sum(diffs) / len(diffs), Z95 * se / len(pairs)
    return mean, mean - half, mean + half, 1


@dataclass(frozen=True)
class Condition:
    """mean over ``pairs`` of (a - b) in ``metric`` has the sign ``sign`` (+1: a above b)."""

    metric: str
    pairs: tuple[tuple[str, str], ...]
    sign: int

    def describe(self) -> str:
        a, b = self.pairs[0]
        side = ">" if self.sign > 0 else "<"
        what = f"{a} {side} {b}" if len(self.pairs) == 1 else f"mean over {len(self.pairs)} pairs, a {side} b"
        return f"{self.metric}: {what}"


@dataclass(frozen=True)
class Claim:
    """One of the paper's qualitative findings, as conditions on measured rows."""

    id: str
    text: str
    table: str
    conditions: tuple[Condition, ...]

    @property
    def rows(self) -> set[str]:
        return {r for c in self.conditions for pair in c.pairs for r in pair}


def _table5_pairs() -> tuple[tuple[str, str], ...]:
    return tuple(
        (f"table-5/alpha{a}-standard", f"table-5/alpha{a}-inverted") for a in (0.0, 0.2, 0.5, 0.8, 1.0)
    )


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "naive-1-1-trades",
        "Naive GRPO with 1:1 weights gains identity and loses prompt following against the base model "
        "(Fig. 2, Table 2: DINO 0.760 -> 0.861, CLIP-T 0.304 -> 0.235)",
        "table-2",
        (
            Condition("dino", (("table-2/naive-1-1", "table-2/uno-base"),), +1),
            Condition("clip_t", (("table-2/naive-1-1", "table-2/uno-base"),), -1),
        ),
    ),
    Claim(
        "synergy-beats-naive",
        "Customized-GRPO (SARS + TDW) improves identity and prompt following over naive GRPO 1:1.5 "
        "(Table 2: DINO 0.801 -> 0.812, HPS-v3 7.56 -> 8.32)",
        "table-2",
        (
            Condition("dino", (("table-2/customized-grpo", "table-2/naive-1-1.5"),), +1),
            Condition("hpsv3", (("table-2/customized-grpo", "table-2/naive-1-1.5"),), +1),
        ),
    ),
    Claim(
        "inverted-tdw-hurts",
        "The inverted TDW schedule hurts identity and prompt following at every alpha (Table 5: DINO "
        "0.605-0.620 vs 0.795-0.858, HPS-v3 5.41-5.65 vs 6.73-8.32)",
        "table-5",
        (Condition("dino", _table5_pairs(), +1), Condition("hpsv3", _table5_pairs(), +1)),
    ),
    Claim(
        "tdw-gap-trend",
        "A wider TDW gap w_max - w_min favours identity over prompt following (Table 4: 1.0/0.0 against "
        "0.6/0.4, DINO 0.832 vs 0.795, CLIP-T 0.272 vs 0.292)",
        "table-4",
        (
            Condition("dino", (("table-4/w1.0-0.0", "table-4/w0.6-0.4"),), +1),
            Condition("clip_t", (("table-4/w1.0-0.0", "table-4/w0.6-0.4"),), -1),
        ),
    ),
)


def evaluate_claim(claim: Claim, measured: Measured) -> dict:
    """The verdict on ``claim`` (module docstring) with each condition's difference and interval."""
    missing = sorted(r for r in claim.rows if not measured.get(r))
    if missing:
        return {"claim": claim.id, "verdict": "not measured", "missing": missing, "conditions": []}
    conditions, sides = [], []
    for condition in claim.conditions:
        mean, low, high, seeds = difference(measured, condition.pairs, condition.metric)
        signed_low, signed_high = sorted((condition.sign * low, condition.sign * high))
        side = 1 if signed_low > 0 else -1 if signed_high < 0 else 0
        sides.append(side)
        conditions.append(
            {
                "condition": condition.describe(),
                "metric": condition.metric,
                "difference": mean,
                "ci_low": low,
                "ci_high": high,
                "seeds": seeds,
                "holds": {1: "yes", -1: "no", 0: "unclear"}[side],
            }
        )
    verdict = "contradicted" if -1 in sides else "supported" if all(s == 1 for s in sides) else "inconclusive"
    return {"claim": claim.id, "verdict": verdict, "missing": [], "conditions": conditions}
