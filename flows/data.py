"""Data flows, each logged as one MLflow run in experiment ``data``:

- ``toy-world``: generate (or reuse) the toy world: toy SynCD + ToyBench;
- ``prepare-syncd``: read -> score -> filter -> report a SynCD folder (default: the toy world's), giving the
  training list in the authors' format; in the toy profile the scorers are the toy reward zoo's models,
  trained on the toy world first (once per content);
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

from cgrpo_core.config import override
from cgrpo_core.data.config import DataConfig, data_config
from tasks.data import (
    check_toy_filter,
    filter_syncd_sets,
    log_data_run,
    make_toy_world,
    read_benchmark,
    read_syncd_sets,
    resolve_scorer_models,
    score_syncd_sets,
)


@flow(name="toy-world", log_prints=True)
def toy_world(config: DataConfig | None = None, profile: str = "toy") -> str:
    """Generate (or reuse) the toy world; returns its folder."""
    config = config or data_config(profile)
    world = make_toy_world(config.toy_world)
    files = [str(Path(world) / "world.json")]
    log_data_run(
        "toy-world", config, profile, {}, files, {"stage": "toy-world", "config_hash": Path(world).name}
    )
    print(f"toy world in {world}")
    return world


@flow(name="prepare-syncd", log_prints=True)
def prepare_syncd(
    config: DataConfig | None = None, profile: str = "toy", syncd_root: str | None = None
) -> dict:
    """Read, score, filter a SynCD folder (None: the toy world's); returns the output paths and run id."""
    config = config or data_config(profile)
    needs_world = syncd_root is None or config.score.weights == "toy_zoo"
    world = make_toy_world(config.toy_world) if needs_world else None
    root = syncd_root or str(Path(world) / "syncd")
    sets_dir, sets_key = read_syncd_sets(root)
    score = resolve_scorer_models(config.score, world)
    scores_dir, score_counts = score_syncd_sets(score, root, sets_dir, sets_key)
    filtered, metrics = filter_syncd_sets(config.filter, sets_dir, scores_dir)
    files = [str(Path(filtered) / name) for name in ("report.json", "histograms.png", "train.json")]
    tags = {"stage": "prepare-syncd", "config_hash": Path(filtered).name, "syncd_root": root}
    run_id = log_data_run("prepare-syncd", config, profile, {**metrics, **score_counts}, files, tags)
    print(
        f"training list {filtered}/train.json ({int(metrics['training_pairs'])} pairs); MLflow run {run_id}"
    )
    return {"filtered_dir": filtered, "train_json": str(Path(filtered) / "train.json"), "run_id": run_id}


@flow(name="toy-filter-check", log_prints=True)
def toy_filter_check(config: DataConfig | None = None, profile: str = "toy") -> dict[str, float]:
    """prepare-syncd on the toy SynCD, then the planted-defect recovery shares (logged, returned)."""
    config = config or data_config(profile)
    world = make_toy_world(config.toy_world)
    prepared = prepare_syncd(config, profile)
    check_file, shares = check_toy_filter(prepared["filtered_dir"], world)
    tags = {"stage": "toy-filter-check", "config_hash": Path(prepared["filtered_dir"]).name}
    log_data_run("toy-filter-check", config, profile, shares, [check_file], tags)
    print(f"toy filter check: {shares}")
    return shares


@flow(name="prepare-dreambench", log_prints=True)
def prepare_dreambench(config: DataConfig | None = None, profile: str = "toy") -> str:
    """The evaluation items of DreamBench (config.dreambench.root) or of the toy world's ToyBench."""
    config = config or data_config(profile)
    world = make_toy_world(config.toy_world) if config.dreambench.root is None else None
    items = read_benchmark(config.dreambench, world)
    files = [str(Path(items) / "items.csv"), str(Path(items) / "source.json")]
    log_data_run("prepare-dreambench", config, profile, {}, files, {"stage": "prepare-dreambench"})
    print(f"evaluation items in {items}/items.parquet")
    return items


FLOWS = {
    "toy-world": toy_world,
    "prepare-syncd": prepare_syncd,
    "toy-filter-check": toy_filter_check,
    "prepare-dreambench": prepare_dreambench,
}


def main(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("flow", choices=sorted(FLOWS))
    parser.add_argument("--profile", default="toy", choices=["paper", "toy", "test"])
    parser.add_argument("--syncd-root", help="a SynCD download (prepare-syncd); default: the toy world's")
    parser.add_argument(
        "--dreambench-root", help="DreamBench's dataset/ folder; default: the toy world's ToyBench"
    )
    args = parser.parse_args(argv)
    config = data_config(args.profile)
    if args.dreambench_root:
        config = override(config, {"dreambench.root": args.dreambench_root})
    if args.flow == "prepare-syncd":
        return prepare_syncd(config, args.profile, args.syncd_root)
    return FLOWS[args.flow](config, args.profile)


if __name__ == "__main__":
    main()
