"""Prefect tasks that evaluate one model on DreamBench (or ToyBench), and the run an evaluation process makes.

``evaluated/<key>/`` (the store, built once per content; a resumable working folder while it runs):

- ``images.parquet``: the plan, one row per image (item, subject, class, prompt, its kind, the
  conditioning reference, image index, seed, file name, model key, row), written before any image;
- ``images/<item>_<index>.png``: the generated images; ``parts/``: the scores of each unit of work;
- ``scores.parquet``: the plan's columns plus one column per metric (``dino``, ``clip_i``, ``clip_t``,
  ``hpsv3``), every planned image exactly once;
- ``metadata.parquet``: the same rows for Hugging Face ``datasets``: ``load_dataset("imagefolder",
  data_dir=<folder>)`` loads the images with their plan and scores (browse, share, ``push_to_hub``);
- ``summary.csv``: the mean and 95% bootstrap CI of each metric (columns name the metric's model);
  ``summary_groups.csv``: the same per subject, per prompt kind and for objects vs live subjects;
- ``protocol.json``: everything that fixes the numbers besides the model (also the MLflow params);
  ``metric_models.json``: the model behind each metric ("toy HPSv3" where a toy model stands in);
  ``figures/samples.png``: a sample grid; ``run.json``: row, keys, the MLflow run id; ``spec.json``: what
  the evaluation process read (rerun it with ``python -m tasks.eval_worker spec.json``).

The key covers the evaluation section (benchmark, metric models, seed, prompts, batch size), the sampler,
the model's key (its base weights, LoRA and training data), the benchmark's files and the evaluation code.
Dry runs (``plan_evaluation``) write only ``images.parquet`` and ``protocol.json`` to ``eval_plan/<key>/``.
With ``evaluation.processes`` > 1 the build runs ``python -m tasks.eval_worker`` under ``accelerate
launch``; rank 0 gathers the scores, writes the tables and logs.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
from prefect import task
from prefect.cache_policies import NO_CACHE

from cgrpo_core.config import ExperimentConfig
from cgrpo_core.data.dreambench import subject_images
from cgrpo_core.evaluation.aggregate import summarize, summary_wide
from cgrpo_core.evaluation.config import EvalConfig
from cgrpo_core.evaluation.protocol import metric_models, protocol
from cgrpo_core.policy.config import SamplerConfig
from cgrpo_core.schema import Frozen, config_hash
from cgrpo_core.store import (
    ResultStore,
    atomic_write,
    atomic_write_csv,
    atomic_write_json,
    code_version,
    file_hash,
    folder_fingerprint,
)
from cgrpo_core.training.distributed import SINGLE_PROCESS, Dist
from tasks.tracking import mlflow_run, prefect_run_tags
from tasks.workers import run_worker

if TYPE_CHECKING:
    from cgrpo_core.evaluation.generation import BenchItem

# Sampling, the policy and the metrics (diffusers, transformers) are imported where images are planned,
# generated or scored, not with this module: a flow that finds its evaluations built never loads them.

EXPERIMENT = "evaluate"
EVAL_CODE = ("cgrpo_core.evaluation.engine", "cgrpo_core.evaluation.aggregate")
LORA_FILE = "lora/pytorch_lora_weights.safetensors"


class EvalIdentity(Frozen):
    """What an evaluation's numbers are made of besides the model (:func:`eval_key` hashes it)."""

    evaluation: EvalConfig
    sampler: SamplerConfig


@dataclass(frozen=True)
class EvalSpec:
    """What an evaluation process needs (JSON-able: it crosses to accelerate's workers)."""

    row: str
    config: dict  # the resolved ExperimentConfig (weights = configured)
    model_key: str
    model_folder: str | None  # trained/<key>/ holding lora/ (None: the base model)
    bench: tuple[str, str, str]  # (images root, prompts file, protocol file)
    folder: str

    def experiment(self) -> ExperimentConfig:
        return ExperimentConfig.model_validate(self.config)


def bench_key(bench: tuple[str, str, str]) -> str:
    """The benchmark's content: its subject photos, prompts file and protocol file."""
    root, prompts, proto = bench
    return f"{folder_fingerprint(root)}+{file_hash(prompts)}+{file_hash(proto)}"


def eval_key(config: ExperimentConfig, model_key: str, bench: tuple[str, str, str]) -> str:
    """The store key of ``model_key``'s evaluation under ``config`` on ``bench`` (module docstring)."""
    identity = EvalIdentity(evaluation=config.evaluation, sampler=config.sampler)
    inputs = {"model": model_key, "bench": bench_key(bench), "code": code_version(*EVAL_CODE)}
    return config_hash(identity, inputs)


def plan_key(config: ExperimentConfig, bench: tuple[str, str, str], row: str) -> str:
    """The key of a dry run's plan: the evaluation section, the benchmark and the row (no model)."""
    identity = EvalIdentity(evaluation=config.evaluation, sampler=config.sampler)
    return config_hash(identity, {"bench": bench_key(bench), "row": row, "code": code_version(*EVAL_CODE)})


def bench_items(config: ExperimentConfig, bench: tuple[str, str, str]) -> list[BenchItem]:
    from cgrpo_core.evaluation.generation import benchmark_items

    return benchmark_items(*bench, config.evaluation.prompts_per_subject, config.evaluation.subjects)


def _subject_files(bench: tuple[str, str, str], items: list[BenchItem]) -> dict[str, list[str]]:
    root = Path(bench[0])
    subjects = dict.fromkeys(item.subject for item in items)
    return {s: [str(root / f) for f in subject_images(root, s)] for s in subjects}


def _protocol(config: ExperimentConfig, bench, items, files: dict[str, list[str]]) -> dict[str, Any]:
    counts = [len(v) for v in files.values()]
    name = "ToyBench" if "toybench" in str(bench[0]) else "DreamBench"
    return protocol(
        name,
        config.sampler,
        config.evaluation.seed,
        config.evaluation.benchmark.images_per_prompt,
        len(items),
        len(files),
        (min(counts), max(counts)),
        config.evaluation.metrics,
        config.evaluation.metric_names,
    )


def _write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    with atomic_write(path, "wb") as handle:
        frame.to_parquet(handle, index=False)
    return path


def write_plan(config: ExperimentConfig, bench, folder: Path, model_key: str, row: str) -> pd.DataFrame:
    """``images.parquet`` and ``protocol.json`` in ``folder``; returns the plan."""
    from cgrpo_core.evaluation.engine import plan_images

    items = bench_items(config, bench)
    plan = plan_images(
        items, config.evaluation.benchmark.images_per_prompt, config.evaluation.seed, model_key, row
    )
    files = _subject_files(bench, items)
    _write_parquet(plan, folder / "images.parquet")
    atomic_write_json(folder / "protocol.json", _protocol(config, bench, items, files))
    return plan


def _load_model(spec: EvalSpec, config: ExperimentConfig, device: str):
    from cgrpo_core.policy import load_lora, load_policy

    lora = Path(spec.model_folder) / LORA_FILE if spec.model_folder else None
    if lora is not None and not lora.is_file():
        raise FileNotFoundError(
            f"{spec.row}: the trained LoRA {lora} is missing; train the row again (python -m flows.train "
            f"{spec.row}) or delete {spec.model_folder} so that the next evaluation retrains it"
        )
    policy = load_policy(config.policy, device)
    if lora is not None:
        load_lora(policy.transformer, lora, trainable=False)
    policy.transformer.eval()
    return policy


def run_evaluation(spec: EvalSpec, dist: Dist = SINGLE_PROCESS) -> None:
    """Generate, score and summarise ``spec`` in ``spec.folder`` (continuing what is there); rank 0 logs."""
    from cgrpo_core.evaluation.engine import evaluate_images, load_references
    from cgrpo_core.rewards.registry import RewardSet

    config, folder = spec.experiment(), Path(spec.folder)
    device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    items = bench_items(config, spec.bench)
    files = _subject_files(spec.bench, items)
    references = load_references(files)  # before any work: a bad photo is an error naming it
    run_file = folder / "run.json"
    previous = json.loads(run_file.read_text()) if run_file.is_file() else {}
    key = folder.name.removeprefix(".").removesuffix(".work")
    tags = {"row": spec.row, "profile": config.profile, "model_key": spec.model_key, "eval_key": key}
    tags |= prefect_run_tags()
    opened = (
        mlflow_run(EXPERIMENT, spec.row, tags, resume_run_id=previous.get("mlflow_run_id"))
        if dist.is_main
        else nullcontext()
    )
    with opened as handle:
        if dist.is_main and not previous:
            plan = write_plan(config, spec.bench, folder, spec.model_key, spec.row)
            atomic_write_json(
                run_file,
                {"row": spec.row, "key": key, "model_key": spec.model_key, "mlflow_run_id": handle.run_id},
            )
            atomic_write_json(folder / "config.json", spec.config)
            atomic_write_json(folder / "spec.json", asdict(spec))
            handle.log_params({**json.loads((folder / "protocol.json").read_text()), "row": spec.row})
        dist.barrier()  # the plan exists for every rank
        plan = pd.read_parquet(folder / "images.parquet")
        policy = _load_model(spec, config, device)
        metrics = RewardSet(config.evaluation.metrics, device)
        names = config.evaluation.metric_names
        timings: dict[str, float] = {}
        scores = evaluate_images(
            policy,
            metrics,
            names,
            plan,
            items,
            references,
            folder,
            config.sampler,
            config.evaluation.seed,
            config.evaluation.batch_size,
            dist,
            progress=dist.is_main,
            timings=timings,
        )
        if dist.is_main:
            handle.log_metrics(
                {
                    "seconds/generate": timings["generate_s"],  # rank 0's share
                    "seconds/score": timings["score_s"],
                    "images_generated": timings["generated"],
                }
            )
            _finish(scores, config, items, folder, handle)


def _finish(
    scores: pd.DataFrame, config: ExperimentConfig, items: list[BenchItem], folder: Path, handle
) -> None:
    from cgrpo_core.evaluation.figures import sample_grid_from_scores

    names = list(config.evaluation.metric_names)
    labels = metric_models(config.evaluation.metrics, names)
    atomic_write_json(folder / "metric_models.json", labels)
    _write_parquet(scores, folder / "scores.parquet")
    _write_parquet(scores, folder / "metadata.parquet")  # the Hugging Face imagefolder's metadata
    groups = summarize(scores, names, labels, n_boot=config.evaluation.bootstrap, seed=config.evaluation.seed)
    wide = summary_wide(groups)
    atomic_write_csv(folder / "summary_groups.csv", groups)
    atomic_write_csv(folder / "summary.csv", wide)
    references = {it.subject: it.reference for it in items}
    grid = sample_grid_from_scores(scores, folder, references=references)
    grid_file = save_figure_image(grid, folder / "figures" / "samples.png")
    overall = groups[groups["group"] == "all"]
    handle.log_metrics(
        {f"{r.metric}": r.mean for r in overall.itertuples()}
        | {f"{r.metric}_ci_low": r.ci_low for r in overall.itertuples()}
        | {f"{r.metric}_ci_high": r.ci_high for r in overall.itertuples()}
    )
    for path in (folder / "summary.csv", folder / "summary_groups.csv", folder / "protocol.json"):
        handle.log_artifact(path, "tables")
    handle.log_artifact(grid_file, "figures")


def save_figure_image(image, path: Path) -> Path:
    with atomic_write(path, "wb") as handle:
        image.save(handle, format="PNG")
    return path


@task(cache_policy=NO_CACHE)
def plan_evaluation(row: str, config: ExperimentConfig, bench: tuple[str, str, str]) -> str:
    """A dry run: the planned manifest and protocol of ``config``'s evaluation on ``bench`` (no weights)."""

    def build(folder: Path) -> None:
        write_plan(config, bench, folder, "", row)

    return str(ResultStore().get_or_build("eval_plan", plan_key(config, bench, row), build))


@task(cache_policy=NO_CACHE, tags=["gpu"])
def evaluate_model(
    row: str, config: ExperimentConfig, model_key: str, model_folder: str | None, bench: tuple[str, str, str]
) -> str:
    """The evaluation of the model ``model_key`` (its folder; None: the base model) under ``config``
    (resolved weights): its folder, built once per content (resumable), in this process or
    ``evaluation.processes`` processes under accelerate."""
    key = eval_key(config, model_key, bench)

    def build(folder: Path) -> bool:
        spec = EvalSpec(
            row, config.model_dump(mode="json"), model_key, model_folder, tuple(bench), str(folder)
        )
        processes, threads = config.evaluation.processes, config.evaluation.threads
        if processes == 1 and threads is None:
            run_evaluation(spec)
            return True
        run_worker("tasks.eval_worker", asdict(spec), folder, processes, threads, "accelerate")
        return True

    return str(ResultStore().get_or_build("evaluated", key, build, resumable=True))
