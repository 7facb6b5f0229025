"""Prefect tasks of ``reproduce-paper`` beyond the tables: Figure 2 (training curves) and the one report.

``outputs/figures/<profile>/figure-2/figure-2.png``: the training rewards (group means) and the held-out
checks of naive GRPO 1:1, naive GRPO 1:1.5 and Customized-GRPO, one line per row and seed (MLflow
experiment ``figure-2``).

``outputs/reports/<profile>/<target>/report.md`` (with ``figures/``, ``claims.json``, ``rows.json``): every
reproduced table beside the paper's (the compact "measured [95% CI] / paper" view), every figure, the
verdict on each of the paper's qualitative claims with the differences and intervals behind it, the
protocol, the profile, the code version, each row's config hash and folders, and where the time went
(MLflow experiment ``reproduce-paper``, the report and its figures as artifacts).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from cgrpo_core.evaluation.aggregate import METRIC_NAMES
from cgrpo_core.evaluation.figures import curves_figure
from cgrpo_core.evaluation.tables import table_markdown
from cgrpo_core.plots import save_figure
from cgrpo_core.reproduce import CLAIMS, evaluate_claim
from cgrpo_core.rows import get_row
from cgrpo_core.store import atomic_write_json, atomic_write_text, code_version, workspace
from tasks.tracking import mlflow_run, prefect_run_tags
from tasks.training import START_METRICS

REPORT_EXPERIMENT = "reproduce-paper"
CODE = ("cgrpo_core.training.loop", "cgrpo_core.training.grpo_trainer", "cgrpo_core.evaluation.engine")

ROWS_STAGE = "rows (trained and evaluated)"  # wall time of the rows made side by side
ROW_PARTS = ("train ", "evaluate ")  # "train <row> seed <s>": one row's part (they overlap)
INPUTS_STAGE = "inputs: toy world, zoo, training list, benchmark; the store's look-up"  # found or built
OTHER_STAGE = "other: Prefect, MLflow, hashing"


def _history(folder: str) -> list[dict[str, float]]:
    path = Path(folder) / "history.json"
    return json.loads(path.read_text()) if path.is_file() else []


def _start(folder: str) -> dict[str, float]:
    """The held-out check a training run made before its first step (empty: none)."""
    path = Path(folder) / START_METRICS
    return json.loads(path.read_text()) if path.is_file() else {}


@task(cache_policy=NO_CACHE)
def write_training_curves(
    profile: str, trained: Mapping[str, Sequence[str]], rewards: tuple[str, str]
) -> str:
    """Figure 2 from the trained rows' step metrics (``trained``: row -> one folder per seed)."""
    folder = workspace() / "outputs" / "figures" / profile / "figure-2"
    folder.mkdir(parents=True, exist_ok=True)
    histories, starts = {}, {}
    for row, paths in trained.items():
        for seed, path in enumerate(paths):
            history = _history(path)
            if history:
                label = get_row(row).label + (f" seed {seed}" if len(paths) > 1 else "")
                histories[label], starts[label] = history, _start(path)
    if not histories:
        raise ValueError("figure-2: none of its rows has a training history")
    keys = [f"reward/{rewards[0]}_mean", f"reward/{rewards[1]}_mean", "heldout/dino", "heldout/clip_t"]
    title = f"Figure 2 ({profile}): naive GRPO 1:1, 1:1.5 and Customized-GRPO"
    png = save_figure(curves_figure(histories, keys, title, starts), folder / "figure-2.png")
    atomic_write_json(folder / "rows.json", {"trained": dict(trained)})
    with mlflow_run("figure-2", f"figure-2 ({profile})", {"profile": profile, **prefect_run_tags()}) as run:
        run.log_artifact(png, "figure")
    return str(folder)


HUMAN_FILES = ("figure5.png", "figure5.csv", "correlations.csv")


def latest_human_results() -> str | None:
    """The newest imported human evaluation (``outputs/human_eval_results/<export>/<answers>/``, the default
    of ``python -m flows.human_eval import``) holding Fig. 5 and Table 6, or None."""
    root = workspace() / "outputs" / "human_eval_results"
    found = [p for p in root.glob("*/*") if all((p / name).is_file() for name in HUMAN_FILES)]
    return str(max(found, key=lambda p: (p / "figure5.png").stat().st_mtime)) if found else None


def model_key_of(trained: str | None, evaluated: str | None) -> str | None:
    """The store key of the model behind a row's results (the ``config_hash`` tag of its MLflow runs): its
    training folder's name, or, for the base model, the key its evaluation names."""
    if trained:
        return Path(trained).name
    if evaluated:
        return json.loads((Path(evaluated) / "spec.json").read_text())["model_key"]
    return None


def _git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def _fmt(value: float) -> str:
    return f"{value:+.3g}"


def claims_markdown(verdicts: Sequence[dict]) -> str:
    """The claims section: one line per claim with its verdict, then its conditions."""
    texts = {c.id: c.text for c in CLAIMS}
    lines = ["| claim | verdict | evidence (difference [95% CI], seeds) |", "| --- | --- | --- |"]
    for verdict in verdicts:
        if verdict["verdict"] == "not measured":
            evidence = "missing rows: " + ", ".join(verdict["missing"])
        else:
            evidence = "; ".join(
                f"{c['condition']}: {_fmt(c['difference'])} [{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}], "
                f"{c['seeds']} seed{'s' if c['seeds'] > 1 else ''} -> {c['holds']}"
                for c in verdict["conditions"]
            )
        lines.append(f"| {texts[verdict['claim']]} | **{verdict['verdict']}** | {evidence} |")
    return "\n".join(lines)


@task(cache_policy=NO_CACHE)
def write_report(
    target: str,
    profile: str,
    seeds: int,
    overrides: Mapping[str, object],
    tables: Mapping[str, str],
    figures: Mapping[str, Sequence[str]],
    rows: Mapping[str, dict],
    timings: Mapping[str, float],
    human: str | None = None,
    name: str | None = None,
    zoo: Mapping[str, str] | None = None,
) -> str:
    """The report of one ``reproduce-paper`` run (module docstring). ``tables``: target -> table folder;
    ``figures``: target -> PNG files; ``rows``: row -> {seed, config_hash, trained, evaluated};
    ``timings``: what -> seconds; ``human``: an imported human evaluation's results folder (Fig. 5 and
    Table 6), if the run reports one; ``name``: the report's folder name (default: the target); ``zoo``: the
    ``toy-zoo`` flow's result (toy weights), cited in the header."""
    folder = workspace() / "outputs" / "reports" / profile / (name or target)
    pictures = folder / "figures"
    pictures.mkdir(parents=True, exist_ok=True)
    measured: dict[str, list] = {}
    protocol = None
    for table in tables.values():
        found = json.loads((Path(table) / "rows.json").read_text())
        for row, per_seed in found.get("measured", {}).items():
            measured.setdefault(row, per_seed)
        if protocol is None and found.get("evaluated"):
            first = next(iter(found["evaluated"].values()))[0]
            protocol = json.loads((Path(first) / "protocol.json").read_text())
    claims = [c for c in CLAIMS if c.table in tables or target == "all"]
    verdicts = [evaluate_claim(claim, measured) for claim in claims]
    changed = json.dumps(dict(overrides)) if overrides else "none"
    lines = [
        f"# Reproduction report: {name or target} ({profile} profile)",
        "",
        f"- generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; code {_git_commit()} "
        f"(training and evaluation code version {code_version(*CODE)})",
        f"- seeds: {seeds} (0 .. {seeds - 1}); overrides: {changed}",
        *(
            [
                f"- toy zoo: MLflow run {zoo['run_id']} (experiment toy-zoo: every tiny model's curve and "
                f"checks); the base policy's check and sample grid: {zoo['checks']}"
            ]
            if zoo
            else []
        ),
        f"- metrics: {', '.join(METRIC_NAMES.values())}; a number is the mean over images (over seeds' means "
        "with several seeds), its interval a 95% bootstrap over items (one seed) or a t-interval over seeds",
        "",
        "## The paper's qualitative claims",
        "",
        claims_markdown(verdicts) if verdicts else "No claim of the paper reads this target's rows.",
        "",
    ]
    for name, table in tables.items():
        number = name.split("-")[1]
        compact = Path(table) / f"table-{number}-compact.md"
        full = Path(table) / f"table-{number}.md"
        lines += [(compact if compact.is_file() else full).read_text().strip(), ""]
        for png in ("tradeoff.png", "curves.png"):
            if (Path(table) / png).is_file():
                copy = pictures / f"{name}-{png}"
                shutil.copyfile(Path(table) / png, copy)
                lines += [f"![{name} {png}](figures/{copy.name})", ""]
    for name, pngs in figures.items():
        lines += [f"## {name.replace('-', ' ').capitalize()}", ""]
        for png in pngs:
            copy = pictures / f"{name}-{Path(png).name}"
            shutil.copyfile(png, copy)
            lines += [f"![{name}](figures/{copy.name})", ""]
    if human:
        lines += [f"## Figure 5 and Table 6 (human evaluation, {human})", ""]
        for name in ("figure5.csv", "correlations.csv"):
            frame = pd.read_csv(Path(human) / name)
            lines += [table_markdown(frame, name.removesuffix(".csv")).replace("## ", "### ", 1), ""]
        shutil.copyfile(Path(human) / "figure5.png", pictures / "figure-5.png")
        lines += ["![figure-5](figures/figure-5.png)", ""]
    if protocol:
        lines += ["## Protocol", "", *(f"- {k}: {v}" for k, v in protocol.items()), ""]
    lines += [
        "## Rows",
        "",
        "| row | seed | config hash | trained | evaluated |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row, info in rows.items():
        lines.append(
            f"| {row} | {info['seed']} | `{info['config_hash']}` | {info.get('trained') or '-'} | "
            f"{info.get('evaluated') or '-'} |"
        )
    timings = dict(timings)
    total = timings.pop("total", sum(timings.values()))
    per_row = {k: v for k, v in timings.items() if k.startswith(ROW_PARTS)}
    stages = {k: v for k, v in timings.items() if k not in per_row}
    if ROWS_STAGE not in stages:  # rows made one at a time, inside the table stages
        stages |= {ROWS_STAGE: sum(per_row.values())} if per_row else {}
    other = max(total - sum(stages.values()), 0.0)
    lines += ["", "## Where the time went", "", f"{total:.1f} s in all.", ""]
    lines += ["| stage | seconds | share |", "| --- | --- | --- |"]
    for what, seconds in sorted({**stages, OTHER_STAGE: other}.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {what} | {seconds:.1f} | {seconds / max(total, 1e-9):.1%} |")
    if per_row:
        lines += [
            "",
            f"Each row's training and evaluation, within '{ROWS_STAGE}' (rows run side by side, so these "
            f"overlap: together {sum(per_row.values()):.1f} s):",
            "",
            "| row | seconds |",
            "| --- | --- |",
        ]
        lines += [
            f"| {what} | {seconds:.1f} |" for what, seconds in sorted(per_row.items(), key=lambda kv: -kv[1])
        ]
    timings[OTHER_STAGE] = other
    timings["total"] = total
    report = atomic_write_text(folder / "report.md", "\n".join(lines) + "\n")
    atomic_write_json(folder / "claims.json", verdicts)
    atomic_write_json(folder / "rows.json", {"rows": dict(rows), "timings": dict(timings)})
    tags = {"profile": profile, "target": target, "seeds": str(seeds), **prefect_run_tags()}
    with mlflow_run(REPORT_EXPERIMENT, f"{target} ({profile})", tags) as run:
        run.log_params({"target": target, "profile": profile, "seeds": seeds, **dict(overrides)})
        run.log_metrics({re.sub(r"[^\w\-. :/]", "_", f"seconds/{k}"): v for k, v in timings.items()})
        run.set_tags({f"claim.{v['claim']}": v["verdict"] for v in verdicts})
        run.log_artifact(report, "report")
        for path in [folder / "claims.json", *sorted(pictures.iterdir())]:
            run.log_artifact(path, "report/figures" if path.suffix == ".png" else "report")
    return str(folder)
