"""Prefect tasks of the scoring flow: score a folder of images with named metrics; log the table to MLflow.

The table (the manifest plus one column per metric) is a content-addressed result,
``outputs/store/scores/<hash>/scores.parquet`` built once by the store's ``get_or_build``, where the hash
covers the scoring config (metrics, model ids, preprocessing), the content of the manifest and of every
image it names, and the scoring code; a killed run never leaves a half table.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from cgrpo_core.rewards import RewardSet, ScoringConfig, score_folder
from cgrpo_core.rewards.config import used_sections
from cgrpo_core.rewards.folder import folder_inputs_hash
from cgrpo_core.rewards.vlm_judge import judge_identity
from cgrpo_core.schema import config_hash, flatten
from cgrpo_core.store import ResultStore, atomic_write, code_version
from tasks.tracking import mlflow_run, prefect_run_tags

EXPERIMENT = "scoring"
KIND, TABLE = "scores", "scores.parquet"
VLM_JUDGES = ("vlm_judge_id", "vlm_judge_prompt")


@task(cache_policy=NO_CACHE)
def scoring_key(config: ScoringConfig, image_dir: str, manifest: str) -> str:
    """The table's hash: the settings of the chosen metrics + manifest and image contents + code version."""
    relevant = config.model_copy(update={"models": used_sections(config.models, config.metrics)})
    inputs = {
        "code": code_version("cgrpo_core.rewards.folder"),
        "inputs": folder_inputs_hash(image_dir, manifest),
        **_judge(config),
    }
    return config_hash(relevant, inputs)


def _judge(config: ScoringConfig) -> dict[str, str]:
    """The VLM judge's model and endpoint when a judge metric is scored (they may come from the
    environment, so the config alone does not say which judge answered)."""
    return judge_identity(config.models.vlm) if any(m in VLM_JUDGES for m in config.metrics) else {}


@task(cache_policy=NO_CACHE)
def score_images(config: ScoringConfig, image_dir: str, manifest: str, key: str) -> str:
    """Compute the score table unless it exists; returns its path."""

    def build(out: Path) -> None:
        rewards = RewardSet(config.models, device=config.device)
        frame = score_folder(image_dir, manifest, list(config.metrics), rewards, config.chunk_size)
        with atomic_write(out / TABLE, "wb") as handle:
            frame.to_parquet(handle, index=False)

    return str(ResultStore().get_or_build(KIND, key, build) / TABLE)


@task(retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def log_scores(config: ScoringConfig, key: str, table: str) -> str:
    """One MLflow run in experiment ``scoring``: config params, the mean of each metric, the table."""
    frame = pd.read_parquet(table)
    metrics = {f"mean_{name}": float(frame[name].mean()) for name in config.metrics}
    tags = {
        "profile": config.profile,
        "config_hash": key,
        "metrics": ",".join(config.metrics),
        **_judge(config),
        **prefect_run_tags(),
    }
    with mlflow_run(EXPERIMENT, run_name=config.name, tags=tags) as run:
        run.log_params(flatten(config))
        run.log_metrics({**metrics, "images": float(len(frame))})
        run.log_artifact(table, "tables")
    return run.run_id
