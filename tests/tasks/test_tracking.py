"""MLflow conventions: FINISHED/FAILED runs, and stale RUNNING runs of dead processes swept at start."""

import subprocess
import sys

import pytest

from tasks.tracking import HOST_TAG, PID_TAG, mlflow_run


def test_run_finishes_with_params_metrics_and_tags(mlflow_client):
    with mlflow_run("tracking-test", "ok", tags={"profile": "test"}) as run:
        run.log_params({f"p{i}": i for i in range(150)})  # more than one log_batch call
        run.log_metrics({"loss": 0.5}, step=3)
    got = mlflow_client.get_run(run.run_id)
    assert got.info.status == "FINISHED" and got.info.end_time is not None
    assert got.data.tags["profile"] == "test" and got.data.params["p149"] == "149"
    assert [(m.step, m.value) for m in mlflow_client.get_metric_history(run.run_id, "loss")] == [(3, 0.5)]


def test_exception_marks_the_run_failed(mlflow_client):
    with pytest.raises(ZeroDivisionError):
        with mlflow_run("tracking-test", "boom") as run:
            1 / 0  # noqa: B018
    got = mlflow_client.get_run(run.run_id)
    assert got.info.status == "FAILED" and got.info.end_time is not None
    assert got.data.tags["cgrpo.error"].startswith("ZeroDivisionError")


def test_child_run_points_at_its_parent(mlflow_client):
    with mlflow_run("tracking-test", "parent") as parent:
        with mlflow_run("tracking-test", "child", parent_run_id=parent.run_id) as child:
            pass
    assert mlflow_client.get_run(child.run_id).data.tags["mlflow.parentRunId"] == parent.run_id


def test_a_killed_process_run_is_marked_killed_at_the_next_start(mlflow_client):
    # A process that opens a run and dies without ending it (SIGKILL-like: os._exit skips cleanup).
    code = (
        "import os\n"
        "from tasks.tracking import mlflow_run\n"
        "cm = mlflow_run('tracking-kill', 'doomed')\n"
        "run = cm.__enter__()\n"
        "print(run.run_id, flush=True)\n"
        "os._exit(9)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    doomed = out.stdout.strip().splitlines()[-1]
    stale = mlflow_client.get_run(doomed)
    assert (
        stale.info.status == "RUNNING" and stale.data.tags[PID_TAG].isdigit() and HOST_TAG in stale.data.tags
    )
    with mlflow_run("tracking-kill", "next") as run:
        assert mlflow_client.get_run(run.run_id).info.status == "RUNNING"  # our own live run is kept
    swept = mlflow_client.get_run(doomed)
    assert swept.info.status == "KILLED" and swept.info.end_time is not None


def test_default_store_is_sqlite_in_the_workspace_with_artifacts_beside_it(tmp_path, monkeypatch):
    """Without MLFLOW_TRACKING_URI, runs go to <workspace>/mlruns/mlflow.db and artifacts to
    <workspace>/mlruns/<experiment>/ (MLflow 3.17's plain file store refuses to start)."""
    from mlflow.tracking import MlflowClient

    from tasks.tracking import tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("CGRPO_WORKSPACE", str(tmp_path))
    assert tracking_uri() == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    note = tmp_path / "note.txt"
    note.write_text("hello")
    with mlflow_run("default-store", "ok") as run:
        run.log_artifact(note, "files")
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()
    got = MlflowClient(tracking_uri=tracking_uri()).get_run(run.run_id)
    assert got.info.status == "FINISHED"
    assert (tmp_path / "mlruns" / "default-store" / run.run_id / "artifacts" / "files" / "note.txt").is_file()
