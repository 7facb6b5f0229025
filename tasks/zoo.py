"""Prefect tasks of the toy zoo: build each half once per content, check the base policy, log to MLflow.

Results are built once per content by the store's ``get_or_build`` (cgrpo_core/store.py):

- ``reward_zoo/<reward_zoo_key>``: every toy reward model (cgrpo_core/toy/zoo/rewards/build.py);
- ``policy_zoo/<policy_zoo_key>``: the toy VAE + base policy in FLUX.1-dev layout
  (cgrpo_core/toy/zoo/policy/build.py);
- ``zoo_checks/<hash(check config, sampler, both keys, code)>``: the base policy's check (``checks.json``)
  and sample grid.

MLflow (experiment ``toy-zoo``): one parent run per built zoo (tags ``profile``, ``config_hash``) with a
child run per model (tags ``model``, ``config_hash`` of its half), carrying its config as params, its
training curve as the step metric ``train_loss`` and as a figure, its wall time and the checks that
concern it. A zoo that was logged once is not logged again when a later run reuses it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
from prefect import task
from prefect.cache_policies import NO_CACHE

from cgrpo_core.plots import plot_training_curve
from cgrpo_core.policy import SamplerConfig
from cgrpo_core.schema import config_hash, flatten
from cgrpo_core.store import ResultStore, atomic_write_json, code_version, file_hash
from cgrpo_core.toy.config import BaseCheckConfig, ZooConfig
from cgrpo_core.toy.zoo.policy.build import POLICY_MANIFEST, policy_zoo_key, read_manifest, train_policy_zoo
from cgrpo_core.toy.zoo.policy.config import ZooPolicyConfig
from cgrpo_core.toy.zoo.rewards.build import MANIFEST as REWARD_MANIFEST
from cgrpo_core.toy.zoo.rewards.build import reward_zoo_key, train_reward_zoo
from cgrpo_core.toy.zoo.rewards.config import ZooRewardsConfig
from tasks.tracking import find_finished_run, mlflow_run, prefect_run_tags

EXPERIMENT = "toy-zoo"
# Reward-check metric prefix -> the model it measures (toy/zoo/rewards/checks.py); the rest: parent only.
CHECK_OWNERS = {
    "dino_seg_": "dinov2",
    "scorer_": "dinov2",
    "dino_": "dino_v1",
    "clip_": "clip",
    "aesthetic_": "aesthetic",
    "hpsv3_": "hpsv3",
    "segmenter_": "segmenter",
}


@task(cache_policy=NO_CACHE)
def build_reward_zoo(config: ZooRewardsConfig, toy_world: str) -> str:
    """The toy reward zoo trained on ``toy_world`` (built once per content, then reused): its folder."""
    key = reward_zoo_key(toy_world, config)
    return str(
        ResultStore().get_or_build("reward_zoo", key, lambda out: train_reward_zoo(toy_world, out, config))
    )


@task(cache_policy=NO_CACHE)
def build_policy_zoo(config: ZooPolicyConfig, toy_world: str) -> str:
    """The toy VAE + base policy trained on ``toy_world`` (built once per content, then reused)."""
    key = policy_zoo_key(toy_world, config)
    return str(
        ResultStore().get_or_build("policy_zoo", key, lambda out: train_policy_zoo(toy_world, out, config))
    )


@task(cache_policy=NO_CACHE)
def check_zoo_policy(
    config: BaseCheckConfig, sampler: SamplerConfig, policy_zoo: str, reward_zoo: str, toy_world: str
) -> str:
    """The base policy's check under the zoo's rewards (checks.json, grid.png), once per content."""
    inputs = {
        "sampler": config_hash(sampler),
        "policy": Path(policy_zoo).name,
        "rewards": Path(reward_zoo).name,
        "code": code_version("cgrpo_core.toy.zoo.check"),
    }

    def build(out: Path) -> None:
        # sampling (diffusers) is imported when a check runs: a flow that finds the zoo built never loads it
        from cgrpo_core.toy.zoo.check import check_base_policy

        start = time.perf_counter()
        report, grid = check_base_policy(policy_zoo, reward_zoo, toy_world, config, sampler, progress=True)
        atomic_write_json(out / "checks.json", {**report, "seconds_check": time.perf_counter() - start})
        grid.save(out / "grid.png")

    return str(ResultStore().get_or_build("zoo_checks", config_hash(config, inputs), build))


def zoo_hash(config: ZooConfig, toy_world: str, policy_zoo: str, reward_zoo: str, checks_dir: str) -> str:
    """The whole zoo's content hash (config, toy world, both halves and the check, whose keys cover their
    code): the parent run's ``config_hash`` tag."""
    inputs = {
        "world": file_hash(Path(toy_world) / "world.json"),
        "policy": Path(policy_zoo).name,
        "rewards": Path(reward_zoo).name,
        "checks": Path(checks_dir).name,
    }
    return config_hash(config, inputs)


def _model_params(config: ZooConfig, half: str, model: str) -> dict:
    if half == "policy":
        section = config.policy.vae if model == "vae" else config.policy.policy
        return {**flatten(section), **{f"tiny.{k}": v for k, v in flatten(config.policy.tiny).items()}}
    return flatten(getattr(config.rewards, model))


def _log_model(parent, config, profile, half, model, curve, seconds, checks, key, tmp) -> None:
    tags = {"profile": profile, "model": model, "zoo": half, "config_hash": key}
    with mlflow_run(EXPERIMENT, model, tags=tags, parent_run_id=parent.run_id) as run:
        run.log_params(_model_params(config, half, model))
        run.log_curve("train_loss", curve)
        run.log_metrics({"final_train_loss": curve[-1][1], "seconds": seconds, **checks})
        figure, path = plot_training_curve(curve, f"toy zoo: {model}"), Path(tmp) / f"{model}_curve.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        run.log_artifact(path, "figures")


@task(retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def log_toy_zoo(
    config: ZooConfig, profile: str, toy_world: str, policy_zoo: str, reward_zoo: str, checks_dir: str
) -> str:
    """The zoo's MLflow runs (module docstring), unless this zoo was logged before: the parent run's id."""
    key = zoo_hash(config, toy_world, policy_zoo, reward_zoo, checks_dir)
    logged = find_finished_run(EXPERIMENT, {"config_hash": key, "stage": "toy-zoo"})
    if logged is not None:
        print(f"toy zoo {key} was logged before: MLflow run {logged}")
        return logged
    policy, rewards = read_manifest(policy_zoo, POLICY_MANIFEST), read_manifest(reward_zoo, REWARD_MANIFEST)
    base_checks = read_manifest(checks_dir, "checks.json")
    tags = {
        "profile": profile,
        "stage": "toy-zoo",
        "config_hash": key,
        "policy_zoo": policy["key"],
        "reward_zoo": rewards["key"],
        **prefect_run_tags(),
    }
    with mlflow_run(EXPERIMENT, "toy-zoo", tags=tags) as parent, tempfile.TemporaryDirectory() as tmp:
        parent.log_params(flatten(config))
        seconds = {**policy["seconds"], **rewards["seconds"]}
        parent.log_metrics({"seconds_total": sum(seconds.values()), **seconds})
        parent.log_metrics({f"rewards/{k}": v for k, v in rewards["checks"].items()})
        parent.log_metrics({f"base_policy/{k}": v for k, v in base_checks.items()})
        for half, manifest in (("policy", policy), ("rewards", rewards)):
            for model, curve in manifest["curves"].items():
                checks = _model_checks(half, model, rewards["checks"], base_checks)
                seconds_model = manifest["seconds"].get(f"seconds_{model}", 0.0)
                _log_model(
                    parent, config, profile, half, model, curve, seconds_model, checks, manifest["key"], tmp
                )
        for name in ("checks.json", "grid.png"):
            parent.log_artifact(Path(checks_dir) / name, "base_policy")
        for folder, manifest in ((policy_zoo, POLICY_MANIFEST), (reward_zoo, REWARD_MANIFEST)):
            parent.log_artifact(Path(folder) / manifest, "manifests")
    return parent.run_id


def _model_checks(half: str, model: str, reward_checks: dict, base_checks: dict) -> dict[str, float]:
    """The check metrics that measure ``model``: the base policy's report, or the reward checks whose
    longest matching prefix in CHECK_OWNERS names it."""
    if model == "base_policy":
        return base_checks
    if half != "rewards":
        return {}

    def owner(check: str) -> str | None:
        matches = [prefix for prefix in CHECK_OWNERS if check.startswith(prefix)]
        return CHECK_OWNERS[max(matches, key=len)] if matches else None

    return {name: value for name, value in reward_checks.items() if owner(name) == model}
