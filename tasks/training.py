"""Prefect task that trains one table row (or returns it), and the run a training process makes.

``trained/<key>/`` (the store, built once per content; resumable working folder while it trains):

- ``lora/pytorch_lora_weights.safetensors``: the trained LoRA, diffusers format (method ``base``: none);
- ``checkpoints/``: the last two checkpoints (cgrpo_core/training/loop.py), ``history.json`` (every
  step's metrics), ``curves.png``, ``config.json`` (the resolved experiment), ``spec.json`` (what the
  training process read: rerun it with ``python -m tasks.train_worker spec.json``), ``run.json`` (row,
  key, MLflow run id); RPO's ``preferences.pt``.

The key is :func:`cgrpo_core.config.training_key`: the method and its section, the policy and the
fingerprint of its weights, the rewards it reads, the sampler, the seed, the hash of the training list and
the training code. A killed run, run again, continues from its last checkpoint in the same working
folder and the same MLflow run (experiment ``train``; tags ``row``, ``profile``, ``config_hash``,
``method``; the flattened config as params), logging each step's metrics exactly once: steps that the
run had logged before it was killed are recomputed (bit-identically on CPU) but not logged again.

With ``run.processes`` > 1 the build launches ``python -m tasks.train_worker`` under torchrun; rank 0
logs and writes checkpoints.
"""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from prefect import task
from prefect.cache_policies import NO_CACHE

from cgrpo_core.config import ExperimentConfig, training_key
from cgrpo_core.rewards.base import RewardBatch
from cgrpo_core.schema import flatten
from cgrpo_core.store import ResultStore, atomic_write_json, code_version, file_hash
from cgrpo_core.training.data import TrainPair, read_train_list
from cgrpo_core.training.distributed import SINGLE_PROCESS, Dist
from tasks.tracking import mlflow_run, prefect_run_tags
from tasks.workers import run_worker

if TYPE_CHECKING:
    from cgrpo_core.rewards.registry import RewardSet

# The policy, the rewards and the trainers (diffusers, transformers) are imported where a model is trained,
# not with this module: the flow that only sequences rows (each trained in a worker process) starts
# seconds sooner without them (cgrpo_core/lazy.py).

EXPERIMENT = "train"
TRAINING_CODE = (
    "cgrpo_core.training.grpo_trainer",
    "cgrpo_core.training.sft",
    "cgrpo_core.training.rpo",
    "cgrpo_core.training.loop",
)
PROGRESS = "progress/step"  # logged with every step's metrics: the last step MLflow holds
START_METRICS = "heldout_start.json"  # the held-out check before the first step
# Fault injection for the tests of crash and resume: raise right after this step's metrics are logged,
# before its checkpoint (a crash mid-run; the run resumes from the step before).
FAULT_ENV = "CGRPO_FAULT_AT_STEP"


@dataclass(frozen=True)
class TrainSpec:
    """What a training process needs (JSON-able: it crosses to torchrun's workers)."""

    row: str
    config: dict  # the resolved ExperimentConfig (weights = configured)
    train_json: str
    image_root: str
    bench: tuple[str, str, str] | None  # (images root, prompts file, protocol file) of the held-out items
    folder: str

    def experiment(self) -> ExperimentConfig:
        return ExperimentConfig.model_validate(self.config)


def model_key(config: ExperimentConfig, train_json: str | None) -> str:
    """The store key of the model ``config`` trains on ``train_json`` (module docstring); the base model
    (method ``base``) reads no training list."""
    if config.method == "base":
        return training_key(config, "none")
    if train_json is None:
        raise ValueError(f"method {config.method} trains on a training list: give train_json")
    return training_key(config, file_hash(train_json), {"code": code_version(*TRAINING_CODE)})


def _pair_scorer(config: ExperimentConfig, rewards: RewardSet):
    names = (config.rewards.id, config.rewards.prompt)

    def score(pair: TrainPair, images):
        from PIL import Image

        ref = Image.open(pair.reference).convert("RGB")
        batch = RewardBatch(
            images,
            references=[[ref]] * len(images),
            prompts=[pair.prompt] * len(images),
            subjects=[pair.subject or ""] * len(images),
        )
        got = rewards.score(names, batch)
        return got[names[0]].float().cpu(), got[names[1]].float().cpu()

    return score


def make_trainer(config: ExperimentConfig, policy, pairs, rewards: RewardSet, folder: Path, dist: Dist):
    """The trainer of ``config.method`` (grpo, sft, rpo) on ``pairs``."""
    from cgrpo_core.training.grpo_trainer import GRPOTrainer
    from cgrpo_core.training.rpo import RPOTrainer, build_preferences
    from cgrpo_core.training.sft import SFTTrainer

    names = (config.rewards.id, config.rewards.prompt)
    if config.method == "grpo":
        score = _pair_scorer(config, rewards)
        return GRPOTrainer(policy, pairs, score, names, config.grpo, config.sampler, config.seed, dist)
    if config.method == "sft":
        return SFTTrainer(policy, pairs, config.sft, config.sampler, config.seed, dist)
    if config.method == "rpo":
        prefs = build_preferences(
            policy,
            pairs,
            _pair_scorer(config, rewards),
            config.rpo,
            config.sampler,
            config.seed,
            folder / "preferences.pt",
            dist,
        )
        return RPOTrainer(policy, pairs, prefs, config.rpo, config.sampler, config.seed, dist)
    raise ValueError(f"method {config.method!r} trains nothing")


def _last_logged_step(handle) -> int:
    history = handle.client.get_metric_history(handle.run_id, PROGRESS)
    return max((m.step for m in history), default=-1)


def _curves(
    history: list[tuple[int, dict[str, float]]], config: ExperimentConfig, row: str, path: Path
) -> Path:
    from cgrpo_core.plots import plot_step_metrics, save_figure
    from cgrpo_core.training.heldout import UNTRAINED_METRICS

    names = (config.rewards.id, config.rewards.prompt)
    panels = {"loss": ["loss"]}
    if config.method == "grpo":
        panels = {
            "training rewards (group means)": [f"reward/{n}_mean" for n in names],
            "on-policy ratio, clip fraction": ["ratio_first_update", "clip_fraction"],
        }
    panels["held-out: trained rewards"] = [f"heldout/{n}" for n in names]
    panels["held-out: metrics not trained on"] = [f"heldout/{m}" for m in UNTRAINED_METRICS if m not in names]
    return save_figure(plot_step_metrics(history, panels, f"{row} ({config.method})"), path)


def run_training(spec: TrainSpec, dist: Dist = SINGLE_PROCESS) -> None:
    """Train (or continue training) ``spec.row`` in ``spec.folder``; rank 0 logs to MLflow."""
    from cgrpo_core.policy import load_policy
    from cgrpo_core.rewards.registry import RewardSet

    config, folder = spec.experiment(), Path(spec.folder)
    device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    run_file = folder / "run.json"
    previous = json.loads(run_file.read_text()) if run_file.is_file() else {}
    tags = {
        "row": spec.row,
        "profile": config.profile,
        "config_hash": folder.name.removeprefix(".").removesuffix(".work"),
        "method": config.method,
        **prefect_run_tags(),
    }
    opened = (
        mlflow_run(EXPERIMENT, spec.row, tags, resume_run_id=previous.get("mlflow_run_id"))
        if dist.is_main
        else nullcontext()
    )
    with opened as handle:  # FAILED with the error if anything below raises
        if dist.is_main and not previous:
            atomic_write_json(
                run_file, {"row": spec.row, "key": tags["config_hash"], "mlflow_run_id": handle.run_id}
            )
            atomic_write_json(folder / "config.json", config.model_dump(mode="json"))
            atomic_write_json(folder / "spec.json", asdict(spec))
            handle.log_params({**flatten(config), "row": spec.row})
        pairs = read_train_list(spec.train_json, spec.image_root)
        policy = load_policy(config.policy, device)
        rewards = RewardSet(config.rewards.models, device)
        _train_logged(spec, config, policy, pairs, rewards, folder, dist, handle)


def _train_logged(spec, config, policy, pairs, rewards, folder, dist, handle) -> None:
    from tqdm.auto import tqdm

    from cgrpo_core.evaluation.generation import benchmark_items
    from cgrpo_core.policy import save_lora
    from cgrpo_core.rewards.registry import RewardSet
    from cgrpo_core.training.heldout import UNTRAINED_METRICS, heldout_metrics
    from cgrpo_core.training.loop import train

    trainer = make_trainer(config, policy, pairs, rewards, folder, dist)
    total = trainer.total_steps
    run = config.run
    items = (
        benchmark_items(*spec.bench, run.heldout_prompts_per_subject, run.heldout_subjects)
        if spec.bench
        else []
    )
    metric_set = RewardSet(config.evaluation.metrics, str(policy.device))
    scorers = [(rewards, (config.rewards.id, config.rewards.prompt)), (metric_set, UNTRAINED_METRICS)]
    logged = _last_logged_step(handle) if handle is not None else -1
    bar = tqdm(total=total, desc=spec.row, disable=not dist.is_main)

    def heldout_due(step: int) -> bool:
        every = config.run.heldout_every
        return bool(items) and every > 0 and (step % every == 0 or step == total)

    def heldout() -> dict[str, float]:
        return heldout_metrics(policy, items, config.sampler, run.heldout_samples, run.heldout_seed, scorers)

    def log(step: int, metrics: dict[str, float]) -> None:
        if handle is not None and step > logged:
            handle.log_metrics({**metrics, PROGRESS: step}, step=step)

    def on_start(done: int) -> None:
        bar.update(done)
        if dist.is_main and done == 0 and heldout_due(0):
            before = heldout()
            atomic_write_json(folder / START_METRICS, before)  # kept for the curves of a resumed run
            log(0, before)

    def on_step(step: int, metrics: dict[str, float]) -> None:
        if dist.is_main and heldout_due(step) and step > logged:
            metrics.update(heldout())
        bar.update(1)
        bar.set_postfix({k: f"{v:.3g}" for k, v in metrics.items() if k in ("loss", "ratio_first_update")})
        if dist.is_main:
            log(step, metrics)
        if os.environ.get(FAULT_ENV) == str(step):
            raise RuntimeError(f"injected fault at step {step} ({FAULT_ENV})")

    try:
        history = train(trainer, total, folder, config.run.checkpoint_every, on_step, on_start, dist.is_main)
    finally:
        bar.close()
    if dist.is_main:
        save_lora(policy.transformer, folder / "lora")
        start = folder / START_METRICS
        points = ([(0, json.loads(start.read_text()))] if start.is_file() else []) + list(
            enumerate(history, start=1)
        )
        handle.log_artifact(_curves(points, config, spec.row, folder / "curves.png"), "figures")
        handle.log_metrics({"steps": len(history)}, step=len(history))


@task(cache_policy=NO_CACHE, tags=["gpu"])
def train_model(
    row: str, config: ExperimentConfig, train_json: str, image_root: str, bench: tuple[str, str, str] | None
) -> str:
    """The trained model of ``row`` under ``config`` (resolved weights): its folder, built once per content
    (resumable), in this process or ``config.run.processes`` torchrun processes."""
    key = model_key(config, train_json)

    def build(folder: Path) -> bool:
        spec = TrainSpec(row, config.model_dump(mode="json"), train_json, image_root, bench, str(folder))
        if config.method == "base":
            atomic_write_json(folder / "config.json", spec.config)
            atomic_write_json(folder / "run.json", {"row": row, "key": key, "method": "base"})
            return True
        processes, threads = config.run.processes, config.run.threads
        if processes == 1 and threads is None:
            run_training(spec)
            return True
        run_worker("tasks.train_worker", asdict(spec), folder, processes, threads)
        return True

    return str(ResultStore().get_or_build("trained", key, build, resumable=True))
