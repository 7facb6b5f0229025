"""Issue 12's evidence from a ``reproduce-paper`` report: for each trained row, over its seeds,

1. the training run's own held-out check (``run.heldout_*``: fixed ToyBench items and noise, ODE
   samples), after the last step minus before the first, for the trained rewards and the metrics not
   trained on (DINO-Seg, DINO, CLIP-I, toy HPSv3, CLIP-T);
2. the evaluation (the benchmark protocol, 4 images per item) minus the base model's, overall and by
   prompt kind (recontextualisation, accessorisation, property).

Each number is the mean over seeds with a 95% t-interval over seeds (n >= 2; the base model is measured
once and stands beside every seed); with one seed, the value alone.

Run on a report folder (``python -m flows.reproduce ...`` prints it):
    .venv/bin/python benchmarks/seed_evidence.py outputs/reports/toy/all-3-seeds-6-rows
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd
from scipy import stats

HELDOUT = ("dino_seg", "dino", "clip_i", "hpsv3", "clip_t")
EVALUATED = ("dino", "clip_i", "clip_t", "hpsv3")


def interval(values: list[float]) -> str:
    """``mean [low, high]`` (95% t-interval over the values) or the single value."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return f"{mean:+.3f} (1 seed)"
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}]"


def heldout_change(trained: str) -> dict[str, float]:
    """After - before of the training run's held-out check, per metric."""
    folder = Path(trained)
    before = json.loads((folder / "heldout_start.json").read_text())
    history = json.loads((folder / "history.json").read_text())
    after = next(step for step in reversed(history) if "heldout/dino_seg" in step)
    return {m: after[f"heldout/{m}"] - before[f"heldout/{m}"] for m in HELDOUT}


def evaluation_means(evaluated: str) -> dict[tuple[str, str], float]:
    """(group value, metric) -> mean, for the ``all`` and ``kind`` groups."""
    summary = pd.read_csv(Path(evaluated) / "summary_groups.csv")
    summary = summary[summary["group"].isin(["all", "kind"])]
    return {(r.value, r.metric): float(r.mean) for r in summary.itertuples(index=False)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--base", default="table-2/uno-base", help="the row the evaluations are compared to")
    args = parser.parse_args()
    rows = json.loads((args.report / "rows.json").read_text())["rows"]
    by_row: dict[str, list[dict]] = {}
    for name, info in rows.items():
        by_row.setdefault(name.rsplit(" seed ", 1)[0], []).append(info)
    base = by_row.get(args.base)
    base_means = evaluation_means(base[0]["evaluated"]) if base and base[0].get("evaluated") else None
    print(f"report {args.report}; held-out check: after - before; evaluation: row - {args.base}\n")
    for row, infos in by_row.items():
        trained = [i["trained"] for i in infos if i.get("trained")]
        if not trained:
            continue
        seeds = ", ".join(str(i["seed"]) for i in infos)
        print(f"## {row} (seeds {seeds})")
        if all((Path(t) / "heldout_start.json").is_file() for t in trained):
            changes = [heldout_change(t) for t in trained]
            cells = [f"{m} {interval([c[m] for c in changes])}" for m in HELDOUT]
            print("held-out check:  " + ";  ".join(cells))
        evaluated = [i["evaluated"] for i in infos if i.get("evaluated")]
        if base_means and evaluated:
            means = [evaluation_means(e) for e in evaluated]
            for group in ("all", "recontextualization", "accessorization", "property"):
                cells = [
                    f"{m} {interval([x[(group, m)] - base_means[(group, m)] for x in means])}"
                    for m in EVALUATED
                ]
                print(f"evaluation {group:20s} " + ";  ".join(cells))
        print()


if __name__ == "__main__":
    main()
