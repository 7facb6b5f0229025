"""Prefect tasks of the data stage: toy world, SynCD read -> score -> filter, DreamBench items, MLflow.

Results live in the content-addressed store (``outputs/store/<kind>/<hash>/``, cgrpo_core/store.py):

- ``toy_world/<hash(ToyWorldConfig)>``: the generated world, built in a staging folder, renamed when whole;
- ``syncd_sets/<hash(metadata files)>``: the read table and the reader's issues;
- ``reward_zoo/<hash(ZooRewardsConfig, world)>``: the toy reward zoo whose models score the toy SynCD when
  ``score.weights`` is ``toy_zoo`` (built by tasks/zoo.py, shared with the ``toy-zoo`` flow);
- ``syncd_scores/<hash(ScoreConfig, sets)>``: one score file per set, written as scored (resumable: a
  killed run keeps what it scored, the rerun scores the rest), plus the scorer's failures; the score
  config is hashed with its models resolved, so the zoo's content key is part of it;
- ``syncd_filtered/<hash(FilterConfig, scores)>``: decisions, training list, report, histograms.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from cgrpo_core.config import config_hash, flatten
from cgrpo_core.data.config import DataConfig, DreamBenchConfig, FilterConfig, ScoreConfig, ToyWorldConfig
from cgrpo_core.data.dreambench import bench_files, read_dreambench
from cgrpo_core.data.prepare import (
    read_issues,
    read_table,
    syncd_inputs_hash,
    write_filter_outputs,
    write_issues,
    write_table,
)
from cgrpo_core.data.report import report_metrics
from cgrpo_core.data.scorers import build_scorer, with_zoo_models
from cgrpo_core.data.scoring import score_sets
from cgrpo_core.data.syncd import read_syncd, set_table_schema
from cgrpo_core.data.toyworld.evaluate import check_metrics, evaluate_filter, load_ground_truth
from cgrpo_core.data.toyworld.generate import generate_toy_world
from cgrpo_core.store import ResultStore, atomic_write_csv, atomic_write_json, file_hash, workspace
from cgrpo_core.zoo.reward_config import zoo_rewards_config
from cgrpo_core.zoo.rewards_zoo import zoo_reward_models
from tasks.tracking import mlflow_run, prefect_run_tags
from tasks.zoo import build_reward_zoo

# Bump when code that produces a result changes: it is part of the result's hash.
DATA_CODE_VERSION = "data-v1"
EXPERIMENT = "data"


@task(cache_policy=NO_CACHE)
def make_toy_world(config: ToyWorldConfig) -> str:
    """The toy world for ``config`` (generated once, then reused): its folder."""
    store, key = ResultStore(), config_hash(config, {"code": DATA_CODE_VERSION})
    if not store.exists("toy_world", key):
        with store.building("toy_world", key) as staging:
            generate_toy_world(config, staging)
    return str(store.path("toy_world", key))


@task(cache_policy=NO_CACHE)
def read_syncd_sets(syncd_root: str) -> tuple[str, str]:
    """Read a SynCD folder once per metadata content: (folder with sets.parquet + read_issues.json, key)."""
    store = ResultStore()
    key = f"{syncd_inputs_hash(syncd_root)}-{DATA_CODE_VERSION}"
    if not store.exists("syncd_sets", key):
        index = read_syncd(syncd_root)
        with store.building("syncd_sets", key) as staging:
            write_table(index.sets, staging / "sets.parquet", set_table_schema())
            write_issues(index.issues, staging / "read_issues.json")
    return str(store.path("syncd_sets", key)), key


@task(cache_policy=NO_CACHE)
def resolve_scorer_models(config: ScoreConfig, toy_world: str | None) -> ScoreConfig:
    """The score config with its models in place: as configured, or (weights toy_zoo) the toy reward zoo's,
    trained on ``toy_world`` at ``config.zoo_preset`` (built once, then reused)."""
    if config.weights == "configured":
        return config
    if toy_world is None:
        raise ValueError("score.weights = toy_zoo trains the scorers on the toy world: generate it first")
    zoo = build_reward_zoo.fn(zoo_rewards_config(config.zoo_preset), toy_world)
    return with_zoo_models(config, zoo_reward_models(zoo))


@task(cache_policy=NO_CACHE)
def score_syncd_sets(config: ScoreConfig, syncd_root: str, sets_dir: str, sets_key: str) -> tuple[str, dict]:
    """Score the sets that lack scores (resumable): (scores folder, counts scored / reused / failed)."""
    scores_dir = ResultStore().root / "syncd_scores" / config_hash(config, {"sets": sets_key})
    run = score_sets(
        read_table(Path(sets_dir) / "sets.parquet"),
        syncd_root,
        scores_dir,
        build_scorer(config.identity_scorer, config),
        build_scorer(config.aesthetic_scorer, config),
        batch_size=config.batch_size,
        mask_threshold=config.mask_threshold,
    )
    write_issues(run.failed, scores_dir / "_failures.json")
    return str(scores_dir), {"scored": run.scored, "reused": run.reused, "failed": len(run.failed)}


@task(cache_policy=NO_CACHE)
def filter_syncd_sets(config: FilterConfig, sets_dir: str, scores_dir: str) -> tuple[str, dict]:
    """Filter, rank, draw pairs and report: (folder with FILTER_OUTPUTS, report)."""
    store, scored = ResultStore(), sorted(p.name for p in Path(scores_dir).glob("*.json"))
    # The scores folder is named by the scorer config and the sets; within it, score files never change
    # once written, so which sets have one (and which failed) is the rest of the scores' content.
    inputs = {
        "sets": Path(sets_dir).name,
        "scorer": Path(scores_dir).name,
        "scores": hashlib.sha256("\n".join(scored).encode()).hexdigest()[:16],
    }
    key = config_hash(config, {**inputs, "failures": file_hash(Path(scores_dir) / "_failures.json")})
    issues = read_issues(Path(sets_dir) / "read_issues.json") + read_issues(
        Path(scores_dir) / "_failures.json"
    )
    failed = {i.set_id for i in issues}
    sets = read_table(Path(sets_dir) / "sets.parquet")
    if not store.exists("syncd_filtered", key):
        with store.building("syncd_filtered", key) as staging:
            write_filter_outputs(sets[~sets["set_id"].isin(failed)], scores_dir, issues, config, staging)
    out = store.path("syncd_filtered", key)
    return str(out), report_metrics(json.loads((out / "report.json").read_text(encoding="utf-8")))


@task(cache_policy=NO_CACHE)
def read_benchmark(config: DreamBenchConfig, toy_world: str | None = None) -> str:
    """DreamBench's (or ToyBench's) evaluation items as items.parquet + items.csv; returns the folder."""
    root, prompts, protocol = bench_files(config.root, config.prompts_file, config.protocol_file, toy_world)
    items = read_dreambench(root, prompts, protocol, config.live_classes)
    key = config_hash(
        config, {"prompts": file_hash(prompts), "protocol": file_hash(protocol), "root": str(root)}
    )
    out = workspace() / "outputs" / "data" / "benchmark" / key
    write_table(items, out / "items.parquet")
    atomic_write_csv(out / "items.csv", items)
    atomic_write_json(
        out / "source.json", {"root": str(root), "prompts": str(prompts), "protocol": str(protocol)}
    )
    return str(out)


@task(cache_policy=NO_CACHE)
def check_toy_filter(filtered_dir: str, toy_world: str) -> tuple[str, dict[str, float]]:
    """Compare a filter pass on the toy SynCD with the planted defects: (toy_check.json, share metrics)."""
    decisions = read_table(Path(filtered_dir) / "decisions.parquet")
    result = evaluate_filter(decisions, load_ground_truth(Path(toy_world) / "ground_truth.json"))
    out = workspace() / "outputs" / "data" / "toy_check" / f"{Path(filtered_dir).name}-{Path(toy_world).name}"
    path = atomic_write_json(out / "toy_check.json", result)
    return str(path), check_metrics(result)


@task(retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def log_data_run(
    run_name: str, config: DataConfig, profile: str, metrics: dict, files: list[str], tags: dict
) -> str:
    """One MLflow run in experiment ``data`` with the config, metrics, tags and files; returns its id."""
    with mlflow_run(EXPERIMENT, run_name, tags={"profile": profile, **tags, **prefect_run_tags()}) as run:
        run.log_params(flatten(config))
        run.log_metrics({k: float(v) for k, v in metrics.items()})
        for path in files:
            run.log_artifact(path, "figures" if path.endswith(".png") else "tables")
    return run.run_id
