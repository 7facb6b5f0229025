"""MLflow conventions shared by every task (DESIGN.md, "MLflow conventions").

- Store: ``$MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<workspace>/mlruns/mlflow.db`` with artifacts
  under ``<workspace>/mlruns/<experiment>/`` (MLflow 3.17's plain file store refuses to start).
- Runs are driven through ``MlflowClient`` with explicit run ids (no global "active run"), so parent and
  child runs and several threads never mix.
- A run ends FINISHED, or FAILED when its block raises. A killed process cannot end its runs, so every
  run records its host and pid, and opening a run first marks as KILLED the RUNNING runs of its
  experiment whose process on this host is gone (RELIABILITY.md).
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from cgrpo_core.store import workspace

__all__ = [
    "FLOW_RUN_ID_ENV",
    "FLOW_RUN_NAME_ENV",
    "RunHandle",
    "find_finished_run",
    "mlflow_run",
    "prefect_run_tags",
    "sweep_stale_runs",
    "tracking_uri",
]

FLOW_RUN_ID_ENV = "CGRPO_FLOW_RUN_ID"  # a worker's calling flow run (tasks.workers.worker_env)
FLOW_RUN_NAME_ENV = "CGRPO_FLOW_RUN_NAME"

HOST_TAG, PID_TAG = "cgrpo.host", "cgrpo.pid"
# MLflow 3's UI opens an untyped experiment on its GenAI "traces" page; ours are training runs.
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"
PARAM_BATCH = 100  # MLflow's limit on params per log_batch call
METRIC_BATCH = 1000  # MLflow's limit on metrics per log_batch call


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    db = workspace() / "mlruns" / "mlflow.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db}"


def _client() -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri())


def _experiment_id(client: MlflowClient, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        if KIND_TAG not in found.tags:
            client.set_experiment_tag(found.experiment_id, KIND_TAG, KIND)
        return found.experiment_id
    location = None
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        # Artifacts beside the database, in a folder named after the experiment (MLflow's default
        # would be ./mlruns relative to whatever the current directory happens to be).
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        location = (Path(uri.removeprefix("sqlite:///")).resolve().parent / safe).as_uri()
    try:
        return client.create_experiment(name, artifact_location=location, tags={KIND_TAG: KIND})
    except Exception:
        # Another process created it between our lookup and our create.
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def sweep_stale_runs(client: MlflowClient, experiment_id: str) -> list[str]:
    """Mark KILLED the RUNNING runs of this experiment whose process on this host no longer exists."""
    host = socket.gethostname()
    stale = []
    runs = client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
    )
    for run in runs:
        tags = run.data.tags
        if tags.get(HOST_TAG) != host or not tags.get(PID_TAG, "").isdigit():
            continue
        if not psutil.pid_exists(int(tags[PID_TAG])):
            client.set_tag(run.info.run_id, "cgrpo.swept", "process gone; marked KILLED at next start")
            client.set_terminated(run.info.run_id, status="KILLED")
            stale.append(run.info.run_id)
    return stale


@dataclass(frozen=True)
class RunHandle:
    """An open MLflow run; log through it with explicit run ids."""

    client: MlflowClient
    run_id: str
    experiment_id: str

    def log_params(self, params: Mapping[str, Any]) -> None:
        items = [Param(str(k)[:250], str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), PARAM_BATCH):
            self.client.log_batch(self.run_id, params=items[start : start + PARAM_BATCH])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        self._log_metric_items([Metric(str(k), float(v), now, step) for k, v in metrics.items()])

    def log_curve(self, name: str, curve: Sequence[tuple[int, float]]) -> None:
        """A whole step metric at once: ``curve`` is ``[(step, value)]`` (a training curve)."""
        now = int(time.time() * 1000)
        self._log_metric_items([Metric(name, float(value), now, int(step)) for step, value in curve])

    def _log_metric_items(self, items: list[Metric]) -> None:
        for start in range(0, len(items), METRIC_BATCH):
            self.client.log_batch(self.run_id, metrics=items[start : start + METRIC_BATCH])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if tags:
            self.client.log_batch(self.run_id, tags=[RunTag(str(k), str(v)) for k, v in tags.items()])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)


@contextmanager
def mlflow_run(
    experiment: str,
    run_name: str,
    tags: Mapping[str, Any] | None = None,
    parent_run_id: str | None = None,
    resume_run_id: str | None = None,
) -> Iterator[RunHandle]:
    """Open a run (FINISHED on success, FAILED on an exception), after sweeping stale runs.

    ``resume_run_id``: continue that run (a resumed training run) instead of creating one: it is set
    RUNNING again, with this process's host and pid, and keeps everything it logged."""
    client = _client()
    experiment_id = _experiment_id(client, experiment)
    sweep_stale_runs(client, experiment_id)
    all_tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()), **(tags or {})}
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    if resume_run_id is not None:
        client.update_run(resume_run_id, status="RUNNING")
        handle = RunHandle(client, resume_run_id, experiment_id)
        handle.set_tags(all_tags)
    else:
        run = client.create_run(
            experiment_id, run_name=run_name, tags={k: str(v) for k, v in all_tags.items()}
        )
        handle = RunHandle(client, run.info.run_id, experiment_id)
    try:
        yield handle
    except BaseException as err:
        handle.set_tags({"cgrpo.error": f"{type(err).__name__}: {err}"[:5000]})
        client.set_terminated(handle.run_id, status="FAILED")
        raise
    client.set_terminated(handle.run_id, status="FINISHED")


def find_finished_run(experiment: str, tags: Mapping[str, str]) -> str | None:
    """The newest FINISHED top-level run of ``experiment`` carrying every tag in ``tags``, or None: a result
    that was logged once is not logged again when it is reused."""
    client = _client()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    conditions = ["attributes.status = 'FINISHED'"]
    conditions += [f"tags.`{key}` = '{value}'" for key, value in tags.items()]
    runs = client.search_runs(
        [found.experiment_id],
        " and ".join(conditions),
        max_results=10,
        order_by=["attributes.start_time DESC"],
    )
    runs = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return runs[0].info.run_id if runs else None


def prefect_run_tags() -> dict[str, str]:
    """The current Prefect flow run's id and name, to cross-reference MLflow runs (empty outside a flow).

    In a worker process (:mod:`tasks.workers`), which runs no flow of its own, the calling flow run's,
    from ``$CGRPO_FLOW_RUN_ID`` / ``$CGRPO_FLOW_RUN_NAME``: asking Prefect there (its runtime looks the
    run's name up through the API) made every worker without ``PREFECT_API_URL`` start a temporary Prefect
    server of its own, seconds per row."""
    try:
        from prefect.context import FlowRunContext, TaskRunContext
        from prefect.runtime import flow_run

        if FlowRunContext.get() is not None or TaskRunContext.get() is not None:
            run_id = flow_run.get_id()
            return (
                {"prefect.flow_run_id": str(run_id), "prefect.flow_run_name": str(flow_run.get_name())}
                if run_id
                else {}
            )
    except Exception:
        return {}
    run_id = os.environ.get(FLOW_RUN_ID_ENV)
    return (
        {"prefect.flow_run_id": run_id, "prefect.flow_run_name": os.environ.get(FLOW_RUN_NAME_ENV, "")}
        if run_id
        else {}
    )
