"""Flow ``reproduce-paper``: the paper's tables and figures, every row trained and evaluated once, one report.

    python -m flows.reproduce TARGET [--profile toy|test|paper] [--seeds N] [--preset ...]
                                     [--dreambench-root DIR] [--set dotted.key=value ...]
    python -m flows.reproduce all                    # every table and figure, toy profile, 1 seed
    python -m flows.reproduce table-3 --seeds 3      # one ablation table, 3 seeds
    python -m flows.reproduce all --seeds 3 --rows table-2/uno-base,table-2/naive-1-1
                                                     # only these rows of the targets (more seeds for a claim)
    python -m flows.reproduce --list                 # the targets and the rows each needs
    python -m flows.reproduce table-2 --parallel-rows 1   # one row at a time, in this process

TARGET is ``all``, ``table-1`` ... ``table-5``, ``table-7``, ``table-8``, ``figure-2``, ``figure-3``,
``figure-6`` or ``figure-7`` (cgrpo_core/reproduce.py); ``table-6`` and ``figure-5`` report the newest
imported human evaluation (``python -m flows.human_eval import``), which ``all`` includes when one exists.
The same flow is served as the deployments ``reproduce-paper/<TARGET>`` (``python -m flows.serve``;
README, "Reproducing the paper").

Every row is trained (``train`` flow) and evaluated (``evaluate`` flow) once per content: a row that several
targets share, or that another run is building at the same time, is built once (the result store's lock)
and found again. Seeds S .. S+N-1 of every trained row (S: ``--set seed=S``, default 0); the base model is
trained by nobody, so it has one.
Each table goes to ``outputs/tables/<profile>/table-N/`` and the MLflow experiment ``table-N`` (a parent
run, a child run per row and seed); the run ends with one report, ``outputs/reports/<profile>/<NAME>/``
(the paper's claims with verdicts, every table and figure, the rows' config hashes, where the time went),
NAME being the target, then ``-<N>-seeds`` with several seeds and ``-<K>-rows`` when ``rows`` keeps K rows.
``rows`` (row ids as the tables name them, ``python -m flows.reproduce --list``) keeps only those rows of
the targets: tables then show only them, and a claim whose rows are not all kept is "not measured".

Rows run side by side (``--parallel-rows N``; default: one per core on a CPU machine with the toy or
test profile, each in a process of its own with one torch thread; one at a time on GPUs). The world, zoo and
data are built first, once (with toy weights through the ``toy-zoo`` flow: the zoo's checks against the
world's ground truth and its MLflow runs, experiment ``toy-zoo``); then the rows; then the tables, figures
and report.

The last line printed is the report's folder.
"""

from __future__ import annotations

import argparse
import contextvars
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from functools import partial
from typing import Any

import torch
from prefect import flow

from cgrpo_core.analysis import analysis_config
from cgrpo_core.config import PRESETS, PROFILES, experiment_config
from cgrpo_core.reproduce import TARGETS, expand_target, target_rows
from cgrpo_core.rows import not_run_reason, row_config, rows_of_table
from cgrpo_core.schema import config_hash
from cgrpo_core.store import ResultStore
from flows.analysis import analysis
from flows.cli import parse_changes
from flows.evaluate import evaluate_row
from flows.train import resolve_row, train_row
from flows.zoo import toy_zoo
from tasks.evaluation import eval_key
from tasks.reproduce import (
    INPUTS_STAGE,
    ROWS_STAGE,
    latest_human_results,
    model_key_of,
    write_report,
    write_training_curves,
)
from tasks.tables import write_paper_table
from tasks.training import model_key

HUMAN_TARGETS = ("table-6", "figure-5")
NO_ANSWERS = (
    "no answers imported yet (python -m flows.human_eval export ..., then import; README, "
    "'A blinded human evaluation')"
)
NOT_KEPT = "not in this run's rows"
ANALYSIS_FIGURES = {
    "figure-3": ("fig3_sars_cross_section.png",),
    "figure-6": ("fig6_tdw_schedules.png",),
    "figure-7": ("fig7_alignment.png",),
}


def find_row(row_id: str, config, evaluate: bool, cache: dict) -> tuple[str | None, str | None]:
    """(trained, evaluated) folders of ``row_id`` when the store holds all it needs (the evaluation only
    when ``evaluate``), else (None, None): then the train and evaluate flows make what is missing."""
    base = config.method == "base"
    found = resolve_row(row_id, config, needs_syncd=not base, cache=cache)
    if found.bench is None and evaluate:
        return None, None
    store = ResultStore()
    key = model_key(found.config, None if base else found.train_json)
    trained = None if base else (str(store.path("trained", key)) if store.exists("trained", key) else None)
    if not base and trained is None:
        return None, None
    if not evaluate:
        return trained, None
    evaluation = eval_key(found.config, key, found.bench)
    if not store.exists("evaluated", evaluation):
        return None, None
    return trained, str(store.path("evaluated", evaluation))


def check_rows(target: str, rows: list[str] | None) -> None:
    """A ValueError naming every row of ``rows`` that ``target`` does not have."""
    targets = [] if target in HUMAN_TARGETS else expand_target(target)
    unknown = sorted(set(rows or ()) - {row.id for spec in targets for row in target_rows(spec)})
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not rows of {target} (python -m flows.reproduce --list)")


def report_name(target: str, seeds: int, rows: list[str] | None) -> str:
    """The report's folder name: the target, then ``-<N>-seeds`` and ``-<K>-rows`` (module docstring)."""
    return target + (f"-{seeds}-seeds" if seeds > 1 else "") + (f"-{len(rows)}-rows" if rows else "")


def _seeds(row_changes: dict, seeds: int, first: int) -> list[int]:
    return [first] if row_changes.get("method") == "base" else list(range(first, first + seeds))


def parallel_plan(profile: str, parallel_rows: int) -> tuple[int, int | None]:
    """(rows at once, torch threads per row; None: in the flow's process) for ``parallel_rows`` (0: auto).

    Auto: one row at a time on a GPU or for the paper profile; on a CPU machine with the toy or test
    profile, one row per core (at most 8), each in a process of its own with one thread. Measured on 2
    cores: a toy GRPO step takes 4.5 s alone at 2 threads and 4.8-5.3 s with two one-thread rows side by
    side, so two rows train in about the time of one (docs/reproduce.md, "Rows side by side")."""
    if parallel_rows < 0:
        raise ValueError(f"parallel_rows must be >= 0 (0: auto), got {parallel_rows}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if parallel_rows == 0:
        parallel_rows = 1 if profile == "paper" or torch.cuda.is_available() else min(cores, 8)
    if parallel_rows == 1:
        return 1, None
    return parallel_rows, max(1, cores // parallel_rows)


def _in_parallel(jobs: list[Callable[[], object]], workers: int) -> None:
    """Run ``jobs`` (each a row's train and evaluate subflows) ``workers`` at a time, each in a copy of this
    flow's context (so its subflows are this run's children). After a failure no new job starts, the
    running ones finish, and the first error is raised."""
    if workers == 1:
        for job in jobs:
            job()
        return
    failed = threading.Event()

    def guarded(job: Callable[[], object]) -> None:
        if failed.is_set():
            return
        try:
            job()
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(workers, thread_name_prefix="row") as pool:
        futures = [pool.submit(contextvars.copy_context().run, guarded, job) for job in jobs]
        wait(futures)
    for future in futures:
        if future.exception() is not None:
            raise future.exception()


@flow(name="reproduce-paper", log_prints=True)
def reproduce_paper(
    target: str = "all",
    profile: str = "toy",
    seeds: int = 1,
    preset: str = "paper_default",
    overrides: dict[str, Any] | None = None,
    rows: list[str] | None = None,
    parallel_rows: int = 0,
) -> str:
    """Reproduce ``target`` (module docstring), or only its ``rows``; returns the report's folder.
    ``parallel_rows``: rows trained and evaluated at once (0: auto, :func:`parallel_plan`)."""
    human = None
    if target in HUMAN_TARGETS or target == "all":
        human = latest_human_results()
        if human is None and target in HUMAN_TARGETS:
            raise ValueError(f"{target} comes from a human evaluation's answers: {NO_ANSWERS}")
    targets = [] if target in HUMAN_TARGETS else expand_target(target)
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    if profile not in PROFILES or preset not in PRESETS:
        raise ValueError(f"unknown profile {profile!r} or preset {preset!r}")
    overrides = dict(overrides or {})
    check_rows(target, rows)
    workers, threads = parallel_plan(profile, parallel_rows)
    # Rows side by side each run in a process of their own (neither field is hashed: same results' keys).
    sizing = {} if threads is None else {"run.threads": threads, "evaluation.threads": threads}
    began = time.perf_counter()
    timings: dict[str, float] = {}
    built: dict[str, tuple[str | None, str | None]] = {}  # model config hash -> (trained, evaluated)
    inputs: dict = {}  # what rows share (toy world and zoo, training list, benchmark), resolved once
    row_info: dict[str, dict] = {}

    def config_of(row, seed: int):
        return row_config(row, profile, preset, {**sizing, **overrides, "seed": seed})

    def make_row(row, seed: int, evaluate: bool, config) -> None:
        """Train and evaluate what the store lacks (train and evaluate flows); record the folders."""
        key = config_hash(config)
        trained, evaluated = built[key]
        if trained is None and config.method != "base":
            start = time.perf_counter()
            trained = train_row(row.id, config)
            timings[f"train {row.id} seed {seed}"] = time.perf_counter() - start
        if evaluate and evaluated is None:
            start = time.perf_counter()
            evaluated = evaluate_row(row.id, config)
            timings[f"evaluate {row.id} seed {seed}"] = time.perf_counter() - start
        built[key] = (trained, evaluated)

    # 1. Every distinct model the targets need, found in the store (this builds the toy world, zoo and
    # training list once, here), then 2. what is missing, ``workers`` rows at a time, then 3. the tables.
    wanted: dict[str, list] = {}  # model config hash -> [row, seed, evaluate, config]
    for spec in targets:
        if spec.kind == "analysis":
            continue
        for row in (r for r in target_rows(spec) if not rows or r.id in rows):
            for seed in _seeds(row.changes, seeds, int(overrides.get("seed", 0))):
                config = config_of(row, seed)
                job = wanted.setdefault(config_hash(config), [row, seed, False, config])
                job[2] = job[2] or spec.evaluates
    missing = []
    start = time.perf_counter()
    base = experiment_config(profile, preset, overrides)
    zoo = None
    if wanted and base.weights == "toy_zoo":  # the toy-zoo flow: world, zoo, the base policy's check, MLflow
        zoo = toy_zoo(base)
    for key, (row, seed, evaluate, config) in wanted.items():
        built[key] = find_row(row.id, config, evaluate, inputs)
        if (built[key][0] is None and config.method != "base") or (evaluate and built[key][1] is None):
            missing.append(partial(make_row, row, seed, evaluate, config))
    timings[INPUTS_STAGE] = time.perf_counter() - start
    if missing:
        print(f"{len(missing)} of {len(wanted)} models to train or evaluate, {workers} at a time")
    start = time.perf_counter()
    _in_parallel(missing, workers)
    timings[ROWS_STAGE] = time.perf_counter() - start

    def run_row(row, seed: int) -> tuple[str | None, str | None]:
        config = config_of(row, seed)
        trained, evaluated = built[config_hash(config)]
        row_info[f"{row.id} seed {seed}"] = {
            "seed": seed,
            "config_hash": model_key_of(trained, evaluated) or config_hash(config),
            "trained": trained,
            "evaluated": evaluated,
        }
        return trained, evaluated

    tables: dict[str, str] = {}
    figures: dict[str, list[str]] = {}
    rewards = (base.rewards.id, base.rewards.prompt)
    analysis_folder = None
    for spec in targets:
        start = time.perf_counter()
        chosen = [row for row in target_rows(spec) if not rows or row.id in rows]
        if rows and not chosen:
            continue  # a target none of whose rows is kept (the analysis figures have none)
        if spec.kind == "analysis":
            if analysis_folder is None:
                analysis_folder = analysis(analysis_config(base, preset))
            figures[spec.name] = [f"{analysis_folder}/{name}" for name in ANALYSIS_FIGURES[spec.name]]
            timings[spec.name] = time.perf_counter() - start
            continue
        trained: dict[str, list[str]] = {}
        evaluated: dict[str, list[str]] = {}
        for row in chosen:
            for seed in _seeds(row.changes, seeds, int(overrides.get("seed", 0))):
                done_training, done_evaluation = run_row(row, seed)
                if done_training:
                    trained.setdefault(row.id, []).append(done_training)
                if done_evaluation and spec.evaluates:
                    evaluated.setdefault(row.id, []).append(done_evaluation)
        table_start = time.perf_counter()
        if spec.kind == "curves":
            figures[spec.name] = [f"{write_training_curves(profile, trained, rewards)}/figure-2.png"]
        else:
            number = int(spec.name.split("-")[1])
            reasons = {}
            if spec.kind == "quality":
                reasons = {r.id: why for r in rows_of_table(number) if (why := not_run_reason(r))}
                if rows:
                    reasons |= {r.id: NOT_KEPT for r in rows_of_table(number) if r.id not in rows}
            tables[spec.name] = write_paper_table(number, profile, evaluated, trained, reasons, rewards)
        timings[f"{spec.name}: table/figure and MLflow"] = time.perf_counter() - table_start
    timings["total"] = time.perf_counter() - began
    name = report_name(target, seeds, rows)
    report = write_report(
        target, profile, seeds, overrides, tables, figures, row_info, timings, human, name, zoo
    )
    print(f"reproduce-paper {target} ({profile}, {seeds} seed{'s' if seeds > 1 else ''}): {report}")
    return report


def main(argv: list[str] | None = None) -> str | None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("target", nargs="?", default="all", help="all, table-N or figure-N")
    parser.add_argument("--list", action="store_true", help="list the targets and their rows, then exit")
    parser.add_argument("--profile", default="toy", choices=list(PROFILES))
    parser.add_argument("--preset", default="paper_default", choices=sorted(PRESETS))
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0 .. N-1 of every trained row")
    parser.add_argument("--dreambench-root", help="DreamBench's dataset/ folder (paper profile)")
    parser.add_argument(
        "--rows",
        type=lambda text: [r for r in text.split(",") if r],
        help="only these rows (comma-separated)",
    )
    parser.add_argument(
        "--parallel-rows",
        type=int,
        default=0,
        metavar="N",
        help="rows trained and evaluated at once (default 0: auto, one per core on a CPU machine with the "
        "toy or test profile, else 1)",
    )
    parser.add_argument("--set", dest="changes", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    if args.list:
        for name, spec in TARGETS.items():
            print(f"{name}: {spec.title}: {', '.join(r.id for r in target_rows(spec)) or 'no training'}")
        return None
    overrides = parse_changes(args.changes)
    if args.dreambench_root:
        overrides["evaluation.benchmark.root"] = args.dreambench_root
    try:
        check_rows(args.target, args.rows)
        experiment_config(args.profile, args.preset, overrides)
        folder = reproduce_paper(
            args.target, args.profile, args.seeds, args.preset, overrides, args.rows, args.parallel_rows
        )
    except (KeyError, ValueError, FileNotFoundError) as err:
        raise SystemExit(f"cannot reproduce {args.target}: {err}") from None
    print(folder)
    return folder


if __name__ == "__main__":
    main()
