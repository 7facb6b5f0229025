"""Time one row's evaluation on the toy profile: ToyBench's 750 items x 4 = 3,000 images, every metric.

Run: .venv/bin/python benchmarks/bench_evaluate.py [--threads 2] [--row table-2/uno-base] [--batch 64]
                                                  [--keep DIR]

Target (issue 13): under 2 minutes on 2 cores, split into generation and scoring. Evaluates the toy base
model (or a trained row's LoRA with --lora FOLDER) from the toy zoo already in the store (``./run.sh``
builds it) through :func:`tasks.evaluation.run_evaluation`, the code path of ``python -m flows.evaluate``,
into a temporary folder, so nothing in the store is reused or changed. MLflow logs go to a temporary
store. Prints wall time, the generation / scoring split, images per second and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--row", default="table-2/uno-base")
    parser.add_argument(
        "--lora", help="a trained row's folder (trained/<key>/) to evaluate instead of the base"
    )
    parser.add_argument("--batch", type=int, help="evaluation.batch_size (default: the toy profile's)")
    parser.add_argument("--keep", help="evaluate into this folder (kept) instead of a temporary one")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-eval-"))
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")

    import torch

    from cgrpo_core.data.dreambench import bench_files
    from cgrpo_core.rows import get_row, row_config
    from cgrpo_core.toy.zoo.weights import with_toy_weights
    from tasks.data import make_toy_world
    from tasks.evaluation import EvalSpec, run_evaluation
    from tasks.zoo import build_policy_zoo, build_reward_zoo

    torch.set_num_threads(args.threads)
    # the whole benchmark (the toy profile itself evaluates 5 prompts per subject)
    changes = {"evaluation.prompts_per_subject": None}
    changes |= {"evaluation.batch_size": args.batch} if args.batch else {}
    config = row_config(get_row(args.row), "toy", changes=changes)
    # the store's toy world and zoo (built here if missing: ./run.sh builds them once)
    world = make_toy_world.fn(config.toy.world)
    rewards = build_reward_zoo.fn(config.toy.zoo.rewards, world)
    policy = build_policy_zoo.fn(config.toy.zoo.policy, world)
    resolved = with_toy_weights(config, policy, rewards)
    bench = tuple(str(p) for p in bench_files(None, None, None, world))
    folder = Path(args.keep) if args.keep else tmp / "evaluation"
    folder.mkdir(parents=True, exist_ok=True)
    spec = EvalSpec(args.row, resolved.model_dump(mode="json"), "benchmark", args.lora, bench, str(folder))
    start = time.perf_counter()
    run_evaluation(spec)
    wall = time.perf_counter() - start
    import pandas as pd

    scores = pd.read_parquet(folder / "scores.parquet")
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    run_id = json.loads((folder / "run.json").read_text())["mlflow_run_id"]
    metrics = client.get_run(run_id).data.metrics
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"row {args.row}: {len(scores)} images ({scores['item'].nunique()} items), {args.threads} threads")
    print(
        f"wall {wall:.1f} s (target < 120 s): generation {metrics['seconds/generate']:.1f} s, "
        f"scoring {metrics['seconds/score']:.1f} s, rest (loading, tables, figures) "
        f"{wall - metrics['seconds/generate'] - metrics['seconds/score']:.1f} s"
    )
    print(f"{len(scores) / wall:.1f} images/s; peak RSS {peak:.0f} MiB")
    print(pd.read_csv(folder / "summary.csv").T.to_string(header=False))


if __name__ == "__main__":
    main()
