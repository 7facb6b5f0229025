"""Running a stage's work in processes of its own: ``python -m <worker> SPEC.json``.

A training run or an evaluation goes to new processes when it is data-parallel (``processes`` > 1: torchrun
or accelerate, one process per GPU) or when its config gives it a thread count (``run.threads``,
``evaluation.threads``): then it runs in one process with that many torch threads, so that several rows can
run side by side on one machine (``reproduce-paper``'s ``parallel_rows``) without sharing a thread pool or
a Python interpreter. The spec goes through a JSON file in the result's folder; the worker's MLflow run
carries the calling Prefect flow run's id, as an in-process run does.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from cgrpo_core.training.distributed import launch_command
from tasks.tracking import FLOW_RUN_ID_ENV, FLOW_RUN_NAME_ENV, prefect_run_tags

__all__ = ["ERROR_ENV", "WorkerError", "reporting_errors", "run_worker", "worker_env"]

ERROR_ENV = "CGRPO_WORKER_ERROR"  # where a worker writes the error that stopped it


class WorkerError(RuntimeError):
    """A worker process failed; the message names its exit code and, when it could say, its error."""


def worker_env(threads: int | None) -> dict[str, str]:
    """The environment of a worker process: this one's, with ``threads`` torch/OpenMP threads (None: as
    is) and the current Prefect flow run's id and name (read by :func:`tasks.tracking.prefect_run_tags`
    without asking Prefect's API)."""
    env = dict(os.environ)
    if threads is not None:
        env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    run = prefect_run_tags()
    if run:
        env |= {FLOW_RUN_ID_ENV: run["prefect.flow_run_id"], FLOW_RUN_NAME_ENV: run["prefect.flow_run_name"]}
    return env


@contextmanager
def reporting_errors() -> Iterator[None]:
    """In a worker: an exception that stops it is also written to ``$CGRPO_WORKER_ERROR`` (when set), so
    that the caller's error names the cause, not only an exit code."""
    try:
        yield
    except BaseException as err:
        path = os.environ.get(ERROR_ENV)
        if path and not isinstance(err, KeyboardInterrupt):
            Path(path).write_text(f"{type(err).__name__}: {err}", encoding="utf-8")
        raise


def run_worker(
    module: str,
    spec: dict[str, Any],
    folder: Path,
    processes: int,
    threads: int | None,
    launcher: Literal["torchrun", "accelerate"] = "torchrun",
) -> None:
    """Run ``python -m module SPEC.json`` on ``processes`` processes (module docstring); a
    :class:`WorkerError` with the worker's own error when it fails."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=folder, delete=False) as handle:
        json.dump(spec, handle)
    error = Path(f"{handle.name}.error")
    try:
        command = launch_command(processes, module, [handle.name], launcher)
        env = {**worker_env(threads), ERROR_ENV: str(error)}
        code = subprocess.run(command, check=False, env=env).returncode
        if code != 0:
            cause = error.read_text(encoding="utf-8") if error.is_file() else "see its log above"
            raise WorkerError(
                f"{spec['row']}: its {processes}-process {module} run failed (exit {code}): {cause}"
            )
    finally:
        Path(handle.name).unlink(missing_ok=True)
        error.unlink(missing_ok=True)
