"""Prefect task that writes one of the paper's tables from evaluated (and trained) rows, and logs it.

``outputs/tables/<profile>/table-N/`` (rewritten whenever the table is rebuilt; each file atomically):

- ``table-N.csv``, ``table-N.md``: every row of the table, the measured mean beside the paper's value and
  the difference (Tables 1-5, 7), or the trainers' step times (Table 8); rows not measured say why;
  ``table-N-compact.md``: the same as "measured [95% CI] / paper", one column per metric;
- ``tradeoff.png``: Fig. 1's identity-vs-prompt trade-off of the measured rows (DINO vs HPS-v3, CLIP-I
  vs CLIP-T, 95% CIs), ``curves.png``: Fig. 2's training rewards of the table's GRPO rows;
- ``rows.json``: which evaluation and training folder(s) each number came from (one per seed), and each
  seed's measured (mean, low, high) per metric.

With several seeds a row's number is the mean over seeds with a 95% t-interval over them
(:func:`cgrpo_core.reproduce.combine_seeds`); with one, the evaluation's bootstrap interval.

Logged to the MLflow experiment ``table-N`` (DESIGN.md's conventions): a parent run (tags ``profile``,
``table``, ``seeds``) with the files as artifacts and each measured mean as a metric ``<row>/<metric>``,
and under it a child run per row and seed (tags ``table``, ``row``, ``profile``, ``config_hash``,
``seed``, ``method`` and the ids of the runs that trained and evaluated it; the flattened config as
params; the evaluation's means and intervals and the training's last step as metrics). A row that several
tables share is trained and evaluated once, and its numbers are copied into each table's experiment.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from cgrpo_core.evaluation.aggregate import metric_label, overall
from cgrpo_core.evaluation.figures import curves_figure, tradeoff_figure
from cgrpo_core.evaluation.tables import (
    build_table,
    compact_table,
    compute_table,
    table_markdown,
    write_table,
)
from cgrpo_core.plots import save_figure
from cgrpo_core.reproduce import combine_seeds
from cgrpo_core.rows import get_row
from cgrpo_core.schema import flatten
from cgrpo_core.store import atomic_write_json, atomic_write_text, workspace
from tasks.tracking import RunHandle, mlflow_run, prefect_run_tags

CURVE_KEYS = ("reward/{id}_mean", "reward/{prompt}_mean")


def _history(folder: str) -> list[dict[str, float]]:
    path = Path(folder) / "history.json"
    return json.loads(path.read_text()) if path.is_file() else []


def _evaluation(folder: str) -> tuple[dict[str, tuple[float, float, float]], dict[str, str], dict]:
    summary = pd.read_csv(Path(folder) / "summary_groups.csv")
    models = json.loads((Path(folder) / "metric_models.json").read_text())
    return overall(summary), models, json.loads((Path(folder) / "protocol.json").read_text())


def table_folder(table: int, profile: str) -> Path:
    return workspace() / "outputs" / "tables" / profile / f"table-{table}"


def _folders(found: Mapping[str, str | Sequence[str]]) -> dict[str, list[str]]:
    return {row: [paths] if isinstance(paths, str) else list(paths) for row, paths in found.items()}


def _config_of(folder: str) -> tuple[dict, str]:
    """(resolved config, model key) of an evaluation folder (spec.json) or a training folder."""
    spec = Path(folder) / "spec.json"
    if spec.is_file():
        data = json.loads(spec.read_text())
        if "model_key" in data:  # an evaluation
            return data["config"], data["model_key"]
        return data["config"], Path(folder).name.removeprefix(".").removesuffix(".work")
    return json.loads((Path(folder) / "config.json").read_text()), Path(folder).name


def _run_id(folder: str) -> str:
    path = Path(folder) / "run.json"
    return json.loads(path.read_text()).get("mlflow_run_id", "") if path.is_file() else ""


def _log_rows(
    parent: RunHandle,
    table: int,
    profile: str,
    evaluated: dict[str, list[str]],
    trained: dict[str, list[str]],
) -> None:
    """One child run per (row, seed) under the table's parent run: tags ``table``, ``row``, ``profile``,
    ``config_hash`` (the model's key), ``seed``, the source runs; the flattened config as params; the
    evaluation's means and intervals and the training's last step as metrics (a reused row's numbers are
    copied into every table that shows it)."""
    for row in dict.fromkeys([*evaluated, *trained]):
        evals, trains = evaluated.get(row, []), trained.get(row, [])
        for index in range(max(len(evals), len(trains))):
            source = evals[index] if index < len(evals) else trains[index]
            config, key = _config_of(source)
            tags = {
                "table": str(table),
                "row": row,
                "profile": profile,
                "config_hash": key,
                "seed": str(config.get("seed", "")),
                "method": config.get("method", ""),
            }
            metrics: dict[str, float] = {}
            if index < len(evals):
                tags["evaluate_run_id"] = _run_id(evals[index])
                for metric, (mean, low, high) in _evaluation(evals[index])[0].items():
                    metrics |= {metric: mean, f"{metric}_ci_low": low, f"{metric}_ci_high": high}
            if index < len(trains):
                tags["train_run_id"] = _run_id(trains[index])
                history = _history(trains[index])
                if history:
                    metrics |= {f"train/{k}": v for k, v in history[-1].items() if math.isfinite(v)}
                    metrics["train/steps"] = len(history)
            name = f"{row} (seed {tags['seed']})"
            with mlflow_run(f"table-{table}", name, tags, parent_run_id=parent.run_id) as child:
                child.log_params({**flatten(config), "row": row})
                child.log_metrics(metrics)


@task(cache_policy=NO_CACHE)
def write_paper_table(
    table: int,
    profile: str,
    evaluated: Mapping[str, str | Sequence[str]],
    trained: Mapping[str, str | Sequence[str]],
    reasons: dict[str, str],
    rewards: tuple[str, str],
    tags: Mapping[str, str] | None = None,
) -> str:
    """Table ``table`` from ``evaluated`` (row -> its evaluation folder, or one per seed) and ``trained``
    (row -> training folder(s)); ``reasons`` says why every other row has no number. Returns the table's
    folder. Logged to the MLflow experiment ``table-N``: a parent run with the table's files and numbers,
    a child run per row and seed."""
    evaluated, trained = _folders(evaluated), _folders(trained)
    folder = table_folder(table, profile)
    folder.mkdir(parents=True, exist_ok=True)
    histories = {row: h for row, paths in trained.items() if (h := _history(paths[0]))}
    files: list[Path] = []
    metrics: dict[str, float] = {}
    per_seed: dict[str, list[dict]] = {}
    if table == 8:
        frame = compute_table(histories)
        protocol = None
    else:
        results = {row: [_evaluation(p) for p in paths] for row, paths in evaluated.items()}
        per_seed = {row: [points for points, _, _ in found] for row, found in results.items()}
        combined = {row: combine_seeds(points) for row, points in per_seed.items()}
        first = next(iter(results.values()))[0] if results else ({}, {}, None)
        labels, protocol = first[1], first[2]
        measured = {row: {m: v[0] for m, v in points.items()} for row, points in combined.items()}
        frame = build_table(table, measured, labels, reasons)
        if combined:
            points = {get_row(row).label: p for row, p in combined.items()}
            files.append(save_figure(tradeoff_figure(points, labels), folder / "tradeoff.png"))
        metrics = {f"{row}/{m}": v for row, values in measured.items() for m, v in values.items()}
    seeds = max((len(p) for p in [*evaluated.values(), *trained.values()]), default=0)
    title = f"Table {table} ({profile} profile, {seeds} seed{'s' if seeds != 1 else ''})"
    files.extend(write_table(frame, folder, f"table-{table}", title, protocol))
    if table != 8:
        intervals = {
            row: {metric_label(m, labels[m]): (lo, hi) for m, (_, lo, hi) in points.items()}
            for row, points in combined.items()
        }
        compact = table_markdown(compact_table(frame, intervals), f"{title}: measured [95% CI] / paper")
        files.append(atomic_write_text(folder / f"table-{table}-compact.md", compact))
    grpo = {get_row(row).label: h for row, h in histories.items() if "ratio" in h[0]}
    if grpo:
        keys = [k.format(id=rewards[0], prompt=rewards[1]) for k in CURVE_KEYS]
        files.append(
            save_figure(curves_figure(grpo, keys, f"Table {table}: training rewards"), folder / "curves.png")
        )
    atomic_write_json(
        folder / "rows.json",
        {"evaluated": evaluated, "trained": trained, "not_measured": reasons, "measured": per_seed},
    )
    run_tags = {
        "profile": profile,
        "table": str(table),
        "seeds": str(seeds),
        **prefect_run_tags(),
        **(tags or {}),
    }
    with mlflow_run(f"table-{table}", f"table-{table} ({profile})", run_tags) as handle:
        handle.log_params(
            {"profile": profile, "seeds": seeds, "rows_measured": len(evaluated) or len(histories)}
        )
        if metrics:
            handle.log_metrics(metrics)
        for path in files:
            handle.log_artifact(path, "table")
        _log_rows(handle, table, profile, evaluated, trained)
    return str(folder)
