"""Orchestration overhead of ``reproduce-paper``: where a table run's time goes, cold and warm.

    python benchmarks/bench_reproduce.py                 # table-8, test profile, a fresh workspace
    python benchmarks/bench_reproduce.py --target table-2 --profile toy --workspace .   # an existing store

Runs ``python -m flows.reproduce TARGET`` twice in the workspace (a temporary one unless ``--workspace``):
the first run builds what is missing, the second finds every result in the store. From each run's report
(``rows.json`` timings) it prints the seconds spent training and evaluating rows, finding or building
their inputs (toy world, zoo, training list, benchmark), in the tables and figures, and the rest
(Prefect's flow and task runs, MLflow logging, hashing): the overhead. The warm run is overhead only
(every row is found again), so its wall time per row bounds the overhead a cold run of the same table
pays on top of its compute.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(target: str, profile: str, workspace: Path) -> tuple[float, dict]:
    env = {
        **os.environ,
        "CGRPO_WORKSPACE": str(workspace),
        "MLFLOW_TRACKING_URI": f"sqlite:///{workspace / 'mlruns' / 'mlflow.db'}",
        "HF_HUB_OFFLINE": "1",
    }
    (workspace / "mlruns").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "flows.reproduce", target, "--profile", profile],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stdout[-3000:] + done.stderr[-3000:])
    report = Path(done.stdout.strip().splitlines()[-1])
    return wall, json.loads((report / "rows.json").read_text())


def _split(timings: dict[str, float]) -> dict[str, float]:
    parts = sum(v for k, v in timings.items() if k.startswith(("train ", "evaluate ")))
    rows = timings.get("rows (trained and evaluated)", parts)  # wall time: rows run side by side
    tables = sum(v for k, v in timings.items() if "table/figure" in k or k.startswith("figure-"))
    inputs = sum(v for k, v in timings.items() if k.startswith("inputs:"))
    total = timings["total"]
    overhead = total - rows - tables - inputs
    return {"rows": rows, "inputs": inputs, "tables": tables, "overhead": overhead, "total": total}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", default="table-8")
    parser.add_argument("--profile", default="test")
    parser.add_argument("--workspace", help="an existing workspace (default: a fresh temporary one)")
    args = parser.parse_args()
    workspace = Path(args.workspace or tempfile.mkdtemp(prefix="bench-reproduce-")).resolve()
    print(f"{args.target}, {args.profile} profile, workspace {workspace}")
    print(
        "| run | process wall (s) | flow total (s) | rows: train + evaluate (s) | inputs (s) | tables (s) "
        "| overhead (s) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in ("cold", "warm"):
        wall, found = _run(args.target, args.profile, workspace)
        split = _split(found["timings"])
        rows = len(found["rows"])
        print(
            f"| {name} | {wall:.1f} | {split['total']:.1f} | {split['rows']:.1f} | {split['inputs']:.1f} | "
            f"{split['tables']:.1f} | "
            f"{split['overhead']:.1f} ({split['overhead'] / split['total']:.1%}; "
            f"{split['overhead'] / max(rows, 1):.1f} per row, {rows} rows) |"
        )


if __name__ == "__main__":
    main()
