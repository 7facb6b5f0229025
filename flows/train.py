"""Flow ``train``: one table row's model, trained once per content (or returned), logged to MLflow.

    python -m flows.train ROW [--profile toy|test|paper] [--preset paper_default|released_code] [--seed N]
                              [--set dotted.key=value ...]
    python -m flows.train table-2/naive-1-1 --profile test --set grpo.max_steps=6
    python -m flows.train --list            # every row id, grouped by the model it trains

ROW is ``table-N/<row>`` (cgrpo_core/rows.py; the README lists them). The config is the preset at the
profile's sizes, then the row's changes, then ``--seed`` and ``--set``. Toy and test profiles: the toy
zoo (built once) gives the weights and the toy SynCD's filtered list the training pairs; held-out checks
use ToyBench. Paper profile: ``policy``/``rewards`` name the weights, ``data.syncd_root`` the SynCD
download, ``evaluation.benchmark.root`` DreamBench (without it there is no held-out check).

The last line printed is the result folder (``lora/`` holds the LoRA in diffusers format). A killed run,
run again with the same arguments, continues from its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from prefect import flow

from cgrpo_core.config import PRESETS, PROFILES, ExperimentConfig
from cgrpo_core.data.dreambench import bench_files
from cgrpo_core.rows import get_row, not_run_reason, row_config, same_model
from cgrpo_core.toy.zoo.weights import with_toy_weights
from flows.cli import parse_changes
from flows.data import prepare_syncd
from tasks.data import make_toy_world
from tasks.training import train_model
from tasks.zoo import build_policy_zoo, build_reward_zoo


@dataclass(frozen=True)
class RowInputs:
    """What a row's training and evaluation read (``train_json``/``image_root`` None: not prepared)."""

    config: ExperimentConfig  # resolved weights
    train_json: str | None
    image_root: str | None
    bench: tuple[str, str, str] | None


def _shared_key(config: ExperimentConfig, needs_syncd: bool) -> str:
    """What the shared inputs of a row depend on: the toy world and zoo, the data preparation, the
    benchmark, the weights (and, to be safe, the seed, the policy and the rewards)."""
    parts = {
        "toy": config.toy,
        "data": config.data,
        "benchmark": config.evaluation.benchmark,
        "weights": config.weights,
        "seed": config.seed,
        "policy": config.policy,
        "rewards": config.rewards,
    }
    dumped = {k: v.model_dump(mode="json") if hasattr(v, "model_dump") else v for k, v in parts.items()}
    return json.dumps({**dumped, "needs_syncd": needs_syncd}, sort_keys=True)


def resolve_row(
    row_id: str, config: ExperimentConfig, needs_syncd: bool = True, cache: dict | None = None
) -> RowInputs:
    """Run the tasks a row's training and evaluation read: the toy world and zoo (toy weights), the
    filtered SynCD list and the benchmark's files. A task call: use it inside a flow. ``cache`` (a dict
    kept by the caller) reuses what an earlier row with the same inputs resolved, without new task runs."""
    reason = not_run_reason(get_row(row_id))
    if reason is not None:
        raise ValueError(f"{row_id} is {reason}")
    if needs_syncd and config.weights != "toy_zoo" and config.data.syncd_root is None:
        raise ValueError(
            "configured weights train on SynCD: set data.syncd_root (--set data.syncd_root=DIR; the README's "
            "'The paper profile's data' says how to download it)"
        )
    key = _shared_key(config, needs_syncd)
    if cache is not None and key in cache:
        world, zoos, train_json, image_root, bench = cache[key]
    else:
        world = zoos = None
        if config.weights == "toy_zoo":
            world = make_toy_world(config.toy.world)
            reward_zoo = build_reward_zoo(config.toy.zoo.rewards, world)
            policy_zoo = build_policy_zoo(config.toy.zoo.policy, world)
            zoos = (policy_zoo, reward_zoo)
        train_json = image_root = None
        if needs_syncd:
            image_root = config.data.syncd_root or str(Path(world) / "syncd")
            train_json = f"{prepare_syncd(config, log_reuse=False)}/train.json"
        benchmark = config.evaluation.benchmark
        bench = None
        if benchmark.root is not None or world is not None:
            root, prompts, protocol = bench_files(
                benchmark.root, benchmark.prompts_file, benchmark.protocol_file, world
            )
            bench = (str(root), str(prompts), str(protocol))
        if cache is not None:
            cache[key] = (world, zoos, train_json, image_root, bench)
    resolved = with_toy_weights(config, *zoos) if zoos is not None else config
    return RowInputs(resolved, train_json, image_root, bench)


@flow(name="train", log_prints=True)
def train_row(row_id: str, config: ExperimentConfig) -> str:
    """Train ``row_id`` as ``config`` describes (weights resolved here); returns its result folder."""
    inputs = resolve_row(row_id, config)
    if inputs.bench is None:
        print("no evaluation.benchmark.root: training without held-out checks")
    folder = train_model(row_id, inputs.config, inputs.train_json, inputs.image_root, inputs.bench)
    print(f"{row_id}: {folder}")
    return folder


def main(argv: list[str] | None = None) -> str | None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("row", nargs="?", help="table-N/<row>, e.g. table-2/customized-grpo")
    parser.add_argument("--list", action="store_true", help="list the rows and exit")
    parser.add_argument("--profile", default="toy", choices=list(PROFILES))
    parser.add_argument("--preset", default="paper_default", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, help="the run's seed (default 0)")
    parser.add_argument("--set", dest="changes", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    if args.list or not args.row:
        for group in same_model(args.profile, args.preset):
            print("  ".join(group))
        return None
    try:
        row = get_row(args.row)
        changes = ({"seed": args.seed} if args.seed is not None else {}) | parse_changes(args.changes)
        config = row_config(row, args.profile, args.preset, changes)
    except (KeyError, ValueError) as err:
        raise SystemExit(f"cannot train {args.row}: {err}") from None
    try:
        folder = train_row(args.row, config)
    except ValueError as err:  # bad settings, named by the flow; a failed training run raises TrainingError
        raise SystemExit(f"cannot train {args.row}: {err}") from None
    print(folder)
    return folder


if __name__ == "__main__":
    main()
