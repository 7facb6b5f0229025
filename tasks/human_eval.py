"""Prefect tasks of the human evaluation (:mod:`cgrpo_core.evaluation.human`): write a blinded export and its
key, log it with a screenshot of its page, and import the annotators' answers; MLflow experiment
``human-eval``.

- export: ``outputs/human_eval/<export hash>/`` (or ``--out``): ``page.html``, ``pairs.csv``,
  ``images/``, ``references/``; the key ``outputs/human_eval_keys/<export hash>.json`` (or ``--key``),
  never inside the export folder. Logged once per export hash (run ``export <hash>``): the draw, both
  rows, ``pairs.csv`` and a screenshot of the page made by headless chromium (skipped, with the reason
  as the tag ``screenshot``, where no chromium is installed).
- import: ``outputs/human_eval_results/<export hash>/<answers hash>/`` (or ``--out``): ``results.csv``,
  ``figure5.csv``, ``agreement.csv``, ``correlations.csv``, ``figure5.png`` and ``answers.csv`` (the
  checked answers); logged as run ``import <hash>`` with every share, CI, agreement and correlation.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from cgrpo_core.evaluation.human import (
    ANSWER_COLUMNS,
    build_export,
    check_answers,
    check_key,
    draw_pairs,
    pair_images,
    read_answers,
    verify_export,
    write_export,
)
from cgrpo_core.evaluation.human_stats import analyse, figure5
from cgrpo_core.plots import save_figure
from cgrpo_core.rows import get_row
from cgrpo_core.store import atomic_write_csv, atomic_write_json, workspace
from tasks.tracking import find_finished_run, mlflow_run, prefect_run_tags

EXPERIMENT = "human-eval"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
SCREEN = "1200,1000"


def _row_info(row: str, folder: str) -> dict[str, str]:
    run = json.loads((Path(folder) / "run.json").read_text())
    return {
        "row": row,
        "label": get_row(row).label,
        "eval_folder": str(Path(folder).resolve()),
        "eval_key": run["key"],
        "model_key": run["model_key"],
    }


@task(cache_policy=NO_CACHE)
def export_study(
    rows: dict[str, str],
    folders: dict[str, str],
    pairs: int,
    seed: int,
    out: str | None,
    key_file: str | None,
) -> tuple[str, str]:
    """Draw ``pairs`` pairs of the rows ``rows`` ("a"/"b" -> row id) from their evaluations ``folders``,
    write the export and its key; returns (export folder, key file)."""
    info = {side: _row_info(rows[side], folders[side]) for side in ("a", "b")}
    if info["a"]["model_key"] == info["b"]["model_key"]:
        raise ValueError(f"{rows['a']} and {rows['b']} are the same model: compare two different models")
    metrics = [json.loads((Path(folders[s]) / "metric_models.json").read_text()) for s in ("a", "b")]
    if metrics[0] != metrics[1]:
        raise ValueError(f"the rows were scored by different metric models ({metrics[0]} vs {metrics[1]})")
    scores = [pd.read_parquet(Path(folders[s]) / "scores.parquet") for s in ("a", "b")]
    drawn = draw_pairs(pair_images(*scores, list(metrics[0])), pairs, seed)
    export = build_export(drawn, folders, info, metrics[0], {"pairs": pairs, "seed": seed})
    folder = Path(out or workspace() / "outputs" / "human_eval" / export.export_hash).resolve()
    key_path = Path(key_file or workspace() / "outputs" / "human_eval_keys" / f"{export.export_hash}.json")
    if key_path.resolve().is_relative_to(folder):
        raise ValueError(
            f"the key {key_path} would be inside the export {folder}: keep it apart (--key FILE)"
        )
    write_export(export, folder)
    atomic_write_json(key_path, {**export.key, "export_folder": str(folder)})
    return str(folder), str(key_path.resolve())


def page_screenshot(page: Path, png: Path) -> str | None:
    """A screenshot of ``page`` by headless chromium (a fresh profile); None when made, else why not."""
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    if browser is None:
        return f"skipped: no browser on PATH ({', '.join(BROWSERS)}; apt-get install -y chromium)"
    with tempfile.TemporaryDirectory() as profile:
        args = [browser, "--headless", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}"]
        args += [f"--window-size={SCREEN}", f"--screenshot={png}", page.resolve().as_uri()]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # chromium refuses to start as root without it
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=180, check=False)
        except subprocess.TimeoutExpired:
            return "skipped: chromium took over 180 s"
    if done.returncode != 0 or not png.is_file():
        return f"skipped: chromium failed (exit {done.returncode}): {done.stderr.strip()[-300:]}"
    return None


@task(cache_policy=NO_CACHE)
def log_export(folder: str, key_file: str) -> str:
    """Log the export (once per export hash) with a screenshot of its page; returns the MLflow run id."""
    key = json.loads(Path(key_file).read_text())
    tags = {"stage": "export", "export_hash": key["export_hash"]}
    found = find_finished_run(EXPERIMENT, tags)
    if found is not None:
        return found
    rows = key["rows"]
    tags |= {
        "study": key["study"],
        "row_a": rows["a"]["row"],
        "row_b": rows["b"]["row"],
        **prefect_run_tags(),
    }
    with (
        mlflow_run(EXPERIMENT, f"export {key['export_hash']}", tags) as handle,
        tempfile.TemporaryDirectory() as tmp,
    ):
        params = {f"row_{s}.{k}": v for s in ("a", "b") for k, v in rows[s].items()}
        handle.log_params(params | {f"draw.{k}": v for k, v in key["draw"].items()})
        handle.log_params({"export_folder": folder, "key_file": key_file, "pairs": len(key["pairs"])})
        handle.log_artifact(Path(folder) / "pairs.csv", "export")
        png = Path(tmp) / "page.png"
        reason = page_screenshot(Path(folder) / "page.html", png)
        if reason is None:
            handle.log_artifact(png, "export")
        handle.set_tags({"screenshot": reason or "export/page.png"})
        if reason is not None:
            print(f"page screenshot {reason}")
        return handle.run_id


def _answers_hash(paths: list[str]) -> str:
    digests = sorted(hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths)
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()[:16]


def _metrics(tables: dict[str, pd.DataFrame]) -> dict[str, float]:
    out = {
        f"{r.criterion}/{r.outcome}{s}": getattr(r, c)
        for r in tables["figure5"].itertuples()
        for s, c in (("", "share"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high"))
    }
    out |= {
        f"{r.criterion}/{c}": getattr(r, c)
        for r in tables["agreement"].itertuples()
        for c in ("raw_agreement", "fleiss_kappa")
    }
    out |= {
        f"{r.criterion}/{c}/{r.metric}": getattr(r, c)
        for r in tables["correlations"].itertuples()
        for c in ("pearson", "spearman")
    }
    return {k: float(v) for k, v in out.items() if pd.notna(v)}


@task(cache_policy=NO_CACHE)
def import_answers(key_file: str, answer_files: list[str], out: str | None, allow_partial: bool) -> str:
    """Check the answers against the key (and the export, if its folder is there), compute Fig. 5, the
    agreement and the correlations, write and log them; returns the results folder."""
    key = json.loads(Path(key_file).read_text())
    check_key(key, key_file)
    export = Path(key["export_folder"])
    checked = export.is_dir()
    if checked:
        verify_export(key, export)
    else:
        print(f"the export folder {export} is gone: only the answers' pair ids tie them to the export")
    answers = read_answers(answer_files)
    check_answers(answers, key, allow_partial)
    tables = analyse(answers, key)
    digest = _answers_hash(answer_files)
    folder = Path(out or workspace() / "outputs" / "human_eval_results" / key["export_hash"] / digest)
    frame = pd.DataFrame(
        [[getattr(a, c) for c in ANSWER_COLUMNS] for a in answers], columns=list(ANSWER_COLUMNS)
    )
    files = [atomic_write_csv(folder / "answers.csv", frame)]
    files += [atomic_write_csv(folder / f"{name}.csv", table) for name, table in tables.items()]
    labels = {side: key["rows"][side]["label"] for side in ("a", "b")}
    files.append(save_figure(figure5(tables["figure5"], labels), folder / "figure5.png"))
    rows = key["rows"]
    tags = {
        "stage": "import",
        "export_hash": key["export_hash"],
        "study": key["study"],
        "answers_hash": digest,
        "row_a": rows["a"]["row"],
        "row_b": rows["b"]["row"],
        "export_checked": str(checked).lower(),
    }
    with mlflow_run(EXPERIMENT, f"import {key['export_hash']}", tags | prefect_run_tags()) as handle:
        handle.log_params(
            {
                "answer_files": ", ".join(Path(p).name for p in answer_files),
                "answers": len(answers),
                "annotators": len({a.annotator for a in answers}),
                "allow_partial": allow_partial,
                "key_file": key_file,
                "results_folder": str(folder),
            }
        )
        handle.log_metrics(_metrics(tables))
        for path in files:
            handle.log_artifact(path, "results")
    return str(folder)
