"""One table run against a PostgreSQL-backed Prefect server and MLflow store that the test starts itself
(README, "A team set-up"): Debian's ``postgresql`` (``.ci/run`` installs it; the test skips with the reason
where it is missing), a throwaway cluster on a free port, one database for Prefect and one for MLflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import pytest

from flows.serve import free_port, local_server

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
NO_POSTGRES = "no PostgreSQL server binaries: apt-get install -y postgresql (.ci/run installs it)"


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL cluster of its own (trust auth, 127.0.0.1, a free port) with databases prefect and
    mlflow; its port. As root, the cluster runs as the ``postgres`` user (initdb refuses root)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.skip(NO_POSTGRES)
    bindir = found[-1].parent
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="cgrpo-pg-"))
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
        as_user = ["runuser", "-u", "postgres", "--"]
        folder.chmod(0o755)
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    subprocess.run(
        [*as_user, bindir / "initdb", "-D", data, "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    start = [*as_user, bindir / "pg_ctl", "-D", data, "-l", folder / "server.log", "-w"]
    subprocess.run(
        [*start, "-o", f"-p {port} -k {folder} -h 127.0.0.1", "start"], check=True, capture_output=True
    )
    try:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE prefect")
            cursor.execute("CREATE DATABASE mlflow")
        connection.close()
        yield port
    finally:
        subprocess.run([*as_user, bindir / "pg_ctl", "-D", data, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_table_run_against_postgresql_backed_prefect_and_mlflow(postgres, tmp_path):
    import psycopg2
    from mlflow.tracking import MlflowClient

    mlflow_uri = f"postgresql+psycopg2://postgres@127.0.0.1:{postgres}/mlflow"
    client = MlflowClient(tracking_uri=mlflow_uri)
    client.search_experiments()  # create MLflow's tables once, before several processes use the store
    env = {
        **os.environ,
        "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{postgres}/prefect",
        "MLFLOW_TRACKING_URI": mlflow_uri,
        "OMP_NUM_THREADS": "1",
    }
    with ExitStack() as stack:
        env["PREFECT_API_URL"] = local_server(stack, {**env, "PREFECT_HOME": str(tmp_path)}, tmp_path)
        # the models of test_reproduce_flow's fault test, found again (trained here when run alone)
        args = ["table-8", "--profile", "test", "--set", "grpo.max_steps=3", "--set", "seed=11"]
        done = subprocess.run(
            [sys.executable, "-m", "flows.reproduce", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    experiment = client.get_experiment_by_name("table-8")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and len(runs) == 4  # the parent and a child per row
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["row"] for r in runs if r is not parents[0]} == {
        "table-2/sft",
        "table-2/naive-1-1.5",
        "table-2/customized-grpo",
    }
    report = client.search_runs([client.get_experiment_by_name("reproduce-paper").experiment_id])
    assert [r.data.params["target"] for r in report] == ["table-8"]
    # the flow runs live in PostgreSQL
    connection = psycopg2.connect(host="127.0.0.1", port=postgres, user="postgres", dbname="prefect")
    with connection.cursor() as cursor:
        cursor.execute("SELECT state_type FROM flow_run WHERE parent_task_run_id IS NULL")
        assert [row[0] for row in cursor.fetchall()] == ["COMPLETED"]
    connection.close()
