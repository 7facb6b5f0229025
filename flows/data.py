"""Data flows, each logged as one MLflow run in experiment ``data``; the last line printed is the result:

- ``toy-world``: generate (or reuse) the toy world: toy SynCD + ToyBench;
- ``prepare-syncd``: read -> score -> filter -> report a SynCD folder (``data.syncd_root``; default: the
  toy world's), giving the training list in the authors' format; in the toy profile the scorers are the
  toy reward zoo's models, trained on the toy world first (once per content);
- ``toy-filter-check``: prepare-syncd on the toy SynCD, then the share of planted bad sets removed and of
  good sets kept (the ground truth is read only here, never by the pipeline);
- ``prepare-dreambench``: the 750 evaluation items of DreamBench (``--dreambench-root``) or ToyBench.

    python -m flows.data toy-world
    python -m flows.data prepare-syncd --syncd-root /data/syncd --profile paper
    python -m flows.data toy-filter-check
    python -m flows.data prepare-dreambench --dreambench-root /data/dreambooth/dataset --profile paper
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prefect import flow

from cgrpo_core.config import ExperimentConfig, experiment_config
from cgrpo_core.toy.zoo.weights import scores_with_zoo
from flows.cli import add_experiment_arguments, experiment_from_args
from tasks.data import (
    check_toy_filter,
    filter_syncd_sets,
    log_data_run,
    make_toy_world,
    read_benchmark,
    read_syncd_sets,
    score_config,
    score_syncd_sets,
)
from tasks.zoo import build_reward_zoo


@flow(name="toy-world", log_prints=True)
def toy_world(config: ExperimentConfig | None = None) -> str:
    """Generate (or reuse) the toy world; returns its folder."""
    config = config or experiment_config("toy")
    world = make_toy_world(config.toy.world)
    tags = {"stage": "toy-world", "config_hash": Path(world).name}
    log_data_run("toy-world", config.toy.world, config.profile, {}, [str(Path(world) / "world.json")], tags)
    print(f"toy world in {world}")
    return world


@flow(name="prepare-syncd", log_prints=True)
def prepare_syncd(config: ExperimentConfig | None = None, log_reuse: bool = True) -> str:
    """Read, score and filter ``data.syncd_root`` (None: the toy world's SynCD); the filter's folder, which
    holds train.json. ``log_reuse``: log an MLflow run even when every result was reused (False: only when
    no run of this training list was logged before; a row's train and evaluate flows read it so)."""
    config = config or experiment_config("toy")
    with_zoo = scores_with_zoo(config)
    world = make_toy_world(config.toy.world) if config.data.syncd_root is None or with_zoo else None
    root = config.data.syncd_root or str(Path(world) / "syncd")
    sets_dir, sets_key = read_syncd_sets(root)
    reward_zoo = build_reward_zoo(config.toy.zoo.rewards, world) if with_zoo else None
    score = score_config(config.data.score, reward_zoo)
    scores_dir, score_counts = score_syncd_sets(score, root, sets_dir, sets_key)
    filtered, metrics = filter_syncd_sets(config.data.filter, sets_dir, scores_dir)
    files = [str(Path(filtered) / name) for name in ("report.json", "histograms.png", "train.json")]
    tags = {"stage": "prepare-syncd", "config_hash": Path(filtered).name, "syncd_root": root}
    data = config.data.model_copy(update={"score": score})
    metrics = {**metrics, **score_counts}
    run_id = log_data_run("prepare-syncd", data, config.profile, metrics, files, tags, once=not log_reuse)
    print(
        f"training list {filtered}/train.json ({int(metrics['training_pairs'])} pairs); MLflow run {run_id}"
    )
    return filtered


@flow(name="toy-filter-check", log_prints=True)
def toy_filter_check(config: ExperimentConfig | None = None) -> str:
    """prepare-syncd on the toy SynCD, then the planted-defect recovery shares (logged); their file."""
    config = config or experiment_config("toy")
    if config.data.syncd_root is not None:
        raise ValueError(
            "toy-filter-check compares with the toy world's ground truth: leave data.syncd_root unset"
        )
    world = make_toy_world(config.toy.world)
    filtered = prepare_syncd(config)
    check_file, shares = check_toy_filter(filtered, world)
    tags = {"stage": "toy-filter-check", "config_hash": Path(filtered).name}
    log_data_run("toy-filter-check", config.data, config.profile, shares, [check_file], tags)
    print(f"toy filter check: {shares}")
    return check_file


@flow(name="prepare-dreambench", log_prints=True)
def prepare_dreambench(config: ExperimentConfig | None = None) -> str:
    """The evaluation items of DreamBench (``evaluation.benchmark.root``) or of the toy world's ToyBench."""
    config = config or experiment_config("toy")
    benchmark = config.evaluation.benchmark
    world = make_toy_world(config.toy.world) if benchmark.root is None else None
    items = read_benchmark(benchmark, world)
    files = [str(Path(items) / "items.csv"), str(Path(items) / "source.json")]
    tags = {"stage": "prepare-dreambench", "config_hash": Path(items).name}
    log_data_run("prepare-dreambench", benchmark, config.profile, {}, files, tags)
    print(f"evaluation items in {items}/items.parquet")
    return items


FLOWS = {
    "toy-world": toy_world,
    "prepare-syncd": prepare_syncd,
    "toy-filter-check": toy_filter_check,
    "prepare-dreambench": prepare_dreambench,
}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("flow", choices=sorted(FLOWS))
    add_experiment_arguments(parser)
    parser.add_argument("--syncd-root", help="a SynCD download (= --set data.syncd_root=DIR)")
    parser.add_argument(
        "--dreambench-root", help="DreamBench's dataset/ folder (= --set evaluation.benchmark.root=DIR)"
    )
    args = parser.parse_args(argv)
    config = experiment_from_args(
        args, **{"data.syncd_root": args.syncd_root, "evaluation.benchmark.root": args.dreambench_root}
    )
    result = FLOWS[args.flow](config)
    print(result)
    return result


if __name__ == "__main__":
    main()
