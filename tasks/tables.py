"""Prefect task that writes one of the paper's tables from evaluated (and trained) rows, and logs it.

``outputs/tables/<profile>/table-N/`` (rewritten whenever the table is rebuilt; each file atomically):

- ``table-N.csv``, ``table-N.md``: every row of the table, the measured mean beside the paper's value and
  the difference (Tables 1-5, 7), or the trainers' step times (Table 8); rows not measured say why;
  ``table-N-compact.md``: the same as "measured [95% CI] / paper", one column per metric;
- ``tradeoff.png``: Fig. 1's identity-vs-prompt trade-off of the measured rows (DINO vs HPS-v3, CLIP-I
  vs CLIP-T, 95% CIs), ``curves.png``: Fig. 2's training rewards of the table's GRPO rows;
- ``rows.json``: which evaluation and training folder each number came from.

Logged as a run of the MLflow experiment ``tables`` named ``table-N`` (tag ``profile``): the files as
artifacts, each measured mean as a metric ``<row>/<metric>``.
"""

from __future__ import annotations

import json
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
from cgrpo_core.rows import get_row
from cgrpo_core.store import atomic_write_json, atomic_write_text, workspace
from tasks.tracking import mlflow_run, prefect_run_tags

EXPERIMENT = "tables"
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


@task(cache_policy=NO_CACHE)
def write_paper_table(
    table: int,
    profile: str,
    evaluated: dict[str, str],
    trained: dict[str, str],
    reasons: dict[str, str],
    rewards: tuple[str, str],
) -> str:
    """Table ``table`` from ``evaluated`` (row -> evaluation folder) and ``trained`` (row -> training
    folder); ``reasons`` says why every other row has no number. Returns the table's folder."""
    folder = table_folder(table, profile)
    folder.mkdir(parents=True, exist_ok=True)
    histories = {row: h for row, path in trained.items() if (h := _history(path))}
    files: list[Path] = []
    metrics: dict[str, float] = {}
    if table == 8:
        frame = compute_table(histories)
        protocol = None
    else:
        results = {row: _evaluation(path) for row, path in evaluated.items()}
        labels = next(iter(results.values()))[1] if results else {}
        protocol = next(iter(results.values()))[2] if results else None
        measured = {row: {m: v[0] for m, v in points.items()} for row, (points, _, _) in results.items()}
        frame = build_table(table, measured, labels, reasons)
        if results:
            points = {get_row(row).label: p for row, (p, _, _) in results.items()}
            files.append(save_figure(tradeoff_figure(points, labels), folder / "tradeoff.png"))
        metrics = {f"{row}/{m}": v for row, values in measured.items() for m, v in values.items()}
    title = f"Table {table} ({profile} profile)"
    files.extend(write_table(frame, folder, f"table-{table}", title, protocol))
    if table != 8:
        intervals = {
            row: {metric_label(m, labels[m]): (lo, hi) for m, (_, lo, hi) in points.items()}
            for row, (points, _, _) in results.items()
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
        folder / "rows.json", {"evaluated": evaluated, "trained": trained, "not_measured": reasons}
    )
    tags = {"profile": profile, "table": str(table), **prefect_run_tags()}
    with mlflow_run(EXPERIMENT, f"table-{table}", tags) as handle:
        handle.log_params({"profile": profile, "rows_measured": len(evaluated) or len(histories)})
        if metrics:
            handle.log_metrics(metrics)
        for path in files:
            handle.log_artifact(path, "table")
    return str(folder)
