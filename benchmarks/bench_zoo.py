"""The whole toy zoo from nothing through the ``toy-zoo`` flow, then again (reuse), then the toy filter check.

Run: .venv/bin/python benchmarks/bench_zoo.py [--workspace DIR] [--profile toy]

Targets (issue "The toy model zoo"): building the whole zoo from nothing within 15 minutes on 2 CPU cores; a
second run reuses everything in seconds. Steps, in a fresh workspace (default: a temporary folder):

1. ``toy_zoo(profile)``: toy world, reward zoo, policy zoo, the base policy's check, MLflow logging; the wall
   time of the whole flow (Prefect's temporary server included) and of each stage (the manifests);
2. ``toy_zoo(profile)`` again: the wall time of a run that reuses every result;
3. ``toy_filter_check(profile)``: the toy SynCD scored by the zoo's DINOv2 and aesthetic head (the toy
   profile's scorers), filtered, compared with the planted defects (data issue: >= 90% of bad sets removed,
   >= 90% of good sets kept);
4. prints every check metric of the zoo with its acceptance threshold.

Another process using the CPU at the same time slows every stage: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

# Thresholds of the zoo issue's acceptance, by metric (reward checks) or by "base_policy/<metric>".
THRESHOLDS = {
    "dino_seg_auc": (">=", 0.9),
    "clip_t_top1": (">=", 0.8),
    "aesthetic_auc": (">=", 0.9),
}
BUDGET_S = 15 * 60


def _setup(workspace: Path) -> None:
    os.environ.update(
        {
            "CGRPO_WORKSPACE": str(workspace),
            "HF_HUB_OFFLINE": "1",
            "MPLBACKEND": "Agg",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
    )
    os.environ.pop("MLFLOW_TRACKING_URI", None)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workspace", type=Path, help="keep everything here (default: a temporary folder)")
    parser.add_argument("--profile", default="toy", choices=["toy", "test"])
    args = parser.parse_args()
    workspace = args.workspace or Path(tempfile.mkdtemp(prefix="bench-zoo-"))
    workspace.mkdir(parents=True, exist_ok=True)
    _setup(workspace)
    from cgrpo_core.config import experiment_config
    from flows.data import toy_filter_check
    from flows.zoo import toy_zoo

    config = experiment_config(args.profile)

    print(f"workspace: {workspace}; load average before: {os.getloadavg()}")
    start = time.perf_counter()
    built = toy_zoo(config)
    first = time.perf_counter() - start
    start = time.perf_counter()
    toy_zoo(config)
    second = time.perf_counter() - start
    start = time.perf_counter()
    check = json.loads(Path(toy_filter_check(config)).read_text())
    shares = {k: v for k, v in check.items() if isinstance(v, int | float)}
    filter_s = time.perf_counter() - start

    policy = json.loads((Path(built["policy_zoo"]) / "policy_zoo.json").read_text())
    rewards = json.loads((Path(built["reward_zoo"]) / "reward_zoo.json").read_text())
    base = json.loads((Path(built["checks"]) / "checks.json").read_text())
    print(
        f"\nwhole zoo from nothing ({args.profile}): {first:.0f} s (budget {BUDGET_S} s: "
        f"{'met' if first <= BUDGET_S else 'MISSED'}); second run: {second:.1f} s"
    )
    for name, seconds in {
        **policy["seconds"],
        **rewards["seconds"],
        "seconds_check": base["seconds_check"],
    }.items():
        print(f"  {name.removeprefix('seconds_'):12s} {seconds:7.1f} s")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print("\nreward checks:")
    for name, value in rewards["checks"].items():
        op, bound = THRESHOLDS.get(name, (None, None))
        verdict = "" if op is None else f"   (>= {bound}: {'met' if value >= bound else 'MISSED'})"
        print(f"  {name:40s} {value:8.4f}{verdict}")
    print("\nbase policy on ToyBench (identity: DINO-Seg, prompt: toy HPSv3):")
    for name in sorted(base):
        print(f"  {name:40s} {base[name]:8.4f}")
    print(f"\ntoy filter check with the zoo's scorers ({filter_s:.0f} s):")
    for name, value in shares.items():
        print(f"  {name:40s} {value:8.4f}")
    print(f"\ngrid: {Path(built['checks']) / 'grid.png'}")


if __name__ == "__main__":
    main()
