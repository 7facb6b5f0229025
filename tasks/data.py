"""Prefect tasks of the data stage: toy world, SynCD read -> score -> filter, DreamBench items, MLflow.

Every result is built once per content by :meth:`cgrpo_core.store.ResultStore.get_or_build`
(``outputs/store/<kind>/<key>/``); keys cover the config, the inputs' content and the code:

- ``toy_world/<key>``: the generated world;
- ``syncd_sets/<key>``: the read table and the reader's issues, keyed by the metadata files' content;
- ``syncd_scores/<key>``: one score file per set, written as scored into a resumable working folder (a
  killed run keeps what it scored, the rerun scores the rest), plus the scorer's failures; complete once
  every set is scored (with unreadable sets the working folder is used as it is, and a rerun scores what
  was fixed); the score config is hashed with its models resolved, so a toy zoo's key is part of it;
- ``syncd_filtered/<key>``: decisions, training list, report, histograms;
- ``benchmark/<key>``: DreamBench's (or ToyBench's) evaluation items;
- ``toy_filter_check/<key>``: a filter pass compared with the toy world's planted defects.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from cgrpo_core.data.config import DataConfig, DreamBenchConfig, FilterConfig, ScoreConfig
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
from cgrpo_core.schema import config_hash, flatten
from cgrpo_core.store import (
    ResultStore,
    atomic_write_csv,
    atomic_write_json,
    code_version,
    file_hash,
    is_complete,
)
from cgrpo_core.toy.world.config import ToyWorldConfig
from cgrpo_core.toy.world.evaluate import check_metrics, evaluate_filter, load_ground_truth
from cgrpo_core.toy.world.generate import generate_toy_world
from cgrpo_core.toy.world.prompts import DREAMBENCH_PROMPTS
from cgrpo_core.toy.zoo.rewards.build import zoo_reward_models
from tasks.tracking import find_finished_run, mlflow_run, prefect_run_tags

EXPERIMENT = "data"
RUN_COUNTS = "_run.json"  # what the scoring run did, inside the scores folder


@task(cache_policy=NO_CACHE)
def make_toy_world(config: ToyWorldConfig) -> str:
    """The toy world for ``config`` (generated once, then reused): its folder."""
    inputs = {"code": code_version("cgrpo_core.toy.world.generate"), "prompts": file_hash(DREAMBENCH_PROMPTS)}
    built = ResultStore().get_or_build(
        "toy_world", config_hash(config, inputs), lambda out: generate_toy_world(config, out)
    )
    return str(built)


@task(cache_policy=NO_CACHE)
def read_syncd_sets(syncd_root: str) -> tuple[str, str]:
    """Read a SynCD folder once per metadata content: (folder with sets.parquet + read_issues.json, key)."""
    key = f"{syncd_inputs_hash(syncd_root)}-{code_version('cgrpo_core.data.syncd')}"

    def build(out: Path) -> None:
        index = read_syncd(syncd_root)
        write_table(index.sets, out / "sets.parquet", set_table_schema())
        write_issues(index.issues, out / "read_issues.json")

    return str(ResultStore().get_or_build("syncd_sets", key, build)), key


@task(cache_policy=NO_CACHE)
def score_config(config: ScoreConfig, reward_zoo: str | None) -> ScoreConfig:
    """The score config with its models in place: as configured, or the toy reward zoo's (``reward_zoo``)."""
    return config if reward_zoo is None else with_zoo_models(config, zoo_reward_models(reward_zoo))


@task(cache_policy=NO_CACHE)
def score_syncd_sets(config: ScoreConfig, syncd_root: str, sets_dir: str, sets_key: str) -> tuple[str, dict]:
    """Score the sets that lack scores (resumable): (scores folder, counts scored / reused / failed)."""
    store = ResultStore()
    key = config_hash(config, {"sets": sets_key, "code": code_version("cgrpo_core.data.scoring")})
    reused = store.exists("syncd_scores", key)

    def build(out: Path) -> bool:
        run = score_sets(
            read_table(Path(sets_dir) / "sets.parquet"),
            syncd_root,
            out,
            build_scorer(config.identity_scorer, config),
            build_scorer(config.aesthetic_scorer, config),
            batch_size=config.batch_size,
            mask_threshold=config.mask_threshold,
        )
        write_issues(run.failed, out / "_failures.json")
        counts = {"scored": run.scored, "reused": run.reused, "failed": len(run.failed)}
        atomic_write_json(out / RUN_COUNTS, counts)
        return not run.failed  # unreadable sets: stay resumable, so a fixed file is scored next time

    scores = store.get_or_build("syncd_scores", key, build, resumable=True)
    counts = json.loads((scores / RUN_COUNTS).read_text(encoding="utf-8"))
    if reused:  # nothing was scored by this call
        counts = {"scored": 0, "reused": counts["scored"] + counts["reused"], "failed": counts["failed"]}
    return str(scores), counts


@task(cache_policy=NO_CACHE)
def filter_syncd_sets(config: FilterConfig, sets_dir: str, scores_dir: str) -> tuple[str, dict]:
    """Filter, rank, draw pairs and report: (folder with FILTER_OUTPUTS, report)."""
    # A complete scores folder is named by the scorer config and the sets. An incomplete one (some sets
    # were unreadable) may gain score files on a rerun: then which sets have scores and which failed count.
    scores = Path(scores_dir).name
    if not is_complete(scores_dir):
        listing = "\n".join(sorted(p.name for p in Path(scores_dir).glob("*.json")))
        scores += "-" + hashlib.sha256(listing.encode()).hexdigest()[:16]
        scores += "-" + file_hash(Path(scores_dir) / "_failures.json")
    inputs = {"sets": Path(sets_dir).name, "scores": scores, "code": code_version("cgrpo_core.data.prepare")}
    issues = read_issues(Path(sets_dir) / "read_issues.json") + read_issues(
        Path(scores_dir) / "_failures.json"
    )

    def build(out: Path) -> None:
        failed = {i.set_id for i in issues}
        sets = read_table(Path(sets_dir) / "sets.parquet")
        write_filter_outputs(sets[~sets["set_id"].isin(failed)], scores_dir, issues, config, out)

    out = ResultStore().get_or_build("syncd_filtered", config_hash(config, inputs), build)
    return str(out), report_metrics(json.loads((out / "report.json").read_text(encoding="utf-8")))


@task(cache_policy=NO_CACHE)
def read_benchmark(config: DreamBenchConfig, toy_world: str | None = None) -> str:
    """DreamBench's (or ToyBench's) evaluation items as items.parquet + items.csv; returns the folder."""
    root, prompts, protocol = bench_files(config.root, config.prompts_file, config.protocol_file, toy_world)
    inputs = {
        "prompts": file_hash(prompts),
        "protocol": file_hash(protocol),
        "root": str(root),
        "code": code_version("cgrpo_core.data.dreambench"),
    }

    def build(out: Path) -> None:
        items = read_dreambench(root, prompts, protocol, config.live_classes)
        write_table(items, out / "items.parquet")
        atomic_write_csv(out / "items.csv", items)
        source = {"root": str(root), "prompts": str(prompts), "protocol": str(protocol)}
        atomic_write_json(out / "source.json", source)

    return str(ResultStore().get_or_build("benchmark", config_hash(config, inputs), build))


@task(cache_policy=NO_CACHE)
def check_toy_filter(filtered_dir: str, toy_world: str) -> tuple[str, dict[str, float]]:
    """Compare a filter pass on the toy SynCD with the planted defects: (toy_check.json, share metrics)."""
    key = hashlib.sha256(f"{Path(filtered_dir).name}\0{Path(toy_world).name}".encode()).hexdigest()[:16]
    key = f"{key}-{code_version('cgrpo_core.toy.world.evaluate')}"

    def build(out: Path) -> None:
        decisions = read_table(Path(filtered_dir) / "decisions.parquet")
        truth = load_ground_truth(Path(toy_world) / "ground_truth.json")
        atomic_write_json(out / "toy_check.json", evaluate_filter(decisions, truth))

    path = ResultStore().get_or_build("toy_filter_check", key, build) / "toy_check.json"
    return str(path), check_metrics(json.loads(path.read_text(encoding="utf-8")))


@task(retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def log_data_run(
    run_name: str,
    config: DataConfig,
    profile: str,
    metrics: dict,
    files: list[str],
    tags: dict,
    once: bool = False,
) -> str:
    """One MLflow run in experiment ``data`` with the config, metrics, tags and files; returns its id.
    ``once``: when a FINISHED run of the same ``stage`` and ``config_hash`` tags exists, return it and log
    nothing (a result that rows read again and again is logged when it is made, not at every read)."""
    if once:
        logged = find_finished_run(EXPERIMENT, {k: tags[k] for k in ("stage", "config_hash")})
        if logged is not None:
            return logged
    with mlflow_run(EXPERIMENT, run_name, tags={"profile": profile, **tags, **prefect_run_tags()}) as run:
        run.log_params(flatten(config))
        run.log_metrics({k: float(v) for k, v in metrics.items()})
        for path in files:
            run.log_artifact(path, "figures" if path.endswith(".png") else "tables")
    return run.run_id
