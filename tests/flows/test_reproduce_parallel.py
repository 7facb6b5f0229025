"""Rows side by side: how many at once and with how many threads, the job pool's failure rule, and the
worker processes that run one row's training or evaluation (their threads, their errors)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from flows import reproduce
from flows.reproduce import _in_parallel, parallel_plan
from tasks.workers import WorkerError, run_worker


@pytest.fixture
def cores(monkeypatch):
    def set_cores(n: int, cuda: bool = False) -> None:
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(n)), raising=False)
        monkeypatch.setattr(reproduce.torch.cuda, "is_available", lambda: cuda)

    return set_cores


def test_auto_runs_one_row_per_core_with_one_thread_on_a_cpu_machine(cores):
    cores(2)
    assert parallel_plan("toy", 0) == (2, 1)
    assert parallel_plan("test", 0) == (2, 1)
    cores(4)
    assert parallel_plan("toy", 0) == (4, 1)
    cores(32)
    assert parallel_plan("toy", 0) == (8, 4)  # at most 8 rows; the cores left go to their threads


def test_auto_runs_one_row_at_a_time_in_process_for_the_paper_profile_or_on_a_gpu(cores):
    cores(16)
    assert parallel_plan("paper", 0) == (1, None)
    cores(16, cuda=True)
    assert parallel_plan("toy", 0) == (1, None)


def test_an_explicit_count_shares_the_cores(cores):
    cores(4)
    assert parallel_plan("toy", 1) == (1, None)  # one row: in the flow's process, as before
    assert parallel_plan("toy", 2) == (2, 2)
    assert parallel_plan("toy", 3) == (3, 1)
    assert parallel_plan("paper", 2) == (2, 2)  # asked for: honoured
    with pytest.raises(ValueError, match="parallel_rows must be >= 0"):
        parallel_plan("toy", -1)


def test_jobs_run_side_by_side():
    barrier = threading.Barrier(2, timeout=10)  # passes only when both jobs wait at once
    done = []

    def job(name):
        barrier.wait()
        done.append(name)

    _in_parallel([lambda: job("a"), lambda: job("b")], workers=2)
    assert sorted(done) == ["a", "b"]


def test_after_a_failure_no_new_job_starts_the_running_ones_finish_and_the_error_is_raised():
    ran, started = [], threading.Event()

    def fails():
        started.wait(10)  # fails while the other job runs
        raise RuntimeError("row 1 failed at step 2")

    def slow():
        started.set()
        time.sleep(0.3)
        ran.append("slow")

    later = [lambda i=i: ran.append(f"later {i}") for i in range(4)]
    with pytest.raises(RuntimeError, match="row 1 failed at step 2"):
        _in_parallel([fails, slow, *later], workers=2)
    assert ran == ["slow"]


def test_one_worker_runs_the_jobs_in_order_and_stops_at_the_first_error():
    ran = []

    def fails():
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"):
        _in_parallel([lambda: ran.append(1), fails, lambda: ran.append(3)], workers=1)
    assert ran == [1]


WORKER = """
import json, os, sys
from tasks.workers import reporting_errors
spec = json.load(open(sys.argv[1]))
with reporting_errors():
    Path = __import__("pathlib").Path
    Path(spec["out"]).write_text(json.dumps({"omp": os.environ.get("OMP_NUM_THREADS")}))
    if spec["fail"]:
        raise ValueError("a reward returned NaN at step 3")
"""


@pytest.fixture
def worker_module(tmp_path, monkeypatch):
    (tmp_path / "fake_worker.py").write_text(WORKER)
    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), root]))
    return "fake_worker"


def test_a_worker_runs_with_the_threads_it_is_given(tmp_path, worker_module):
    out = tmp_path / "out.json"
    run_worker(worker_module, {"row": "table-2/sft", "out": str(out), "fail": False}, tmp_path, 1, 1)
    assert json.loads(out.read_text()) == {"omp": "1"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake_worker.py", "out.json"]  # spec removed


def test_a_failed_worker_raises_with_its_own_error(tmp_path, worker_module):
    spec = {"row": "table-2/sft", "out": str(tmp_path / "out.json"), "fail": True}
    with pytest.raises(WorkerError, match=r"table-2/sft: .*\(exit 1\): ValueError: a reward returned NaN"):
        run_worker(worker_module, spec, tmp_path, 1, 2)
    assert json.loads((tmp_path / "out.json").read_text()) == {"omp": "2"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake_worker.py", "out.json"]  # spec, error gone


def test_the_report_counts_rows_side_by_side_once_and_lists_each_rows_part(mlflow_client):
    from tasks.reproduce import write_report

    timings = {
        "rows (trained and evaluated)": 100.0,  # wall time: the two rows below ran side by side
        "train table-2/sft seed 0": 80.0,
        "evaluate table-2/sft seed 0": 15.0,
        "train table-2/rpo seed 0": 70.0,
        "table-2: table/figure and MLflow": 6.0,
        "inputs: toy world, zoo, training list, benchmark; the store's look-up": 3.0,
        "total": 110.0,
    }
    folder = write_report("table-2", "test", 1, {}, {}, {}, {}, timings, name="timings-side-by-side")
    text = (Path(folder) / "report.md").read_text()
    section = text[text.index("## Where the time went") :]
    assert "| rows (trained and evaluated) | 100.0 | 90.9% |" in section
    assert "| table-2: table/figure and MLflow | 6.0 | 5.5% |" in section
    assert "| inputs: toy world, zoo, training list, benchmark; the store's look-up | 3.0 | 2.7% |" in section
    assert "| other: Prefect, MLflow, hashing | 1.0 | 0.9% |" in section  # 110 - 100 - 6 - 3
    assert "together 165.0 s" in section
    parts = section[section.index("| row | seconds |") :]
    assert parts.index("train table-2/sft seed 0 | 80.0") < parts.index("train table-2/rpo seed 0 | 70.0")
    saved = json.loads((Path(folder) / "rows.json").read_text())["timings"]
    assert saved["other: Prefect, MLflow, hashing"] == 1.0 and saved["total"] == 110.0


def test_the_report_of_rows_made_one_at_a_time_sums_them_into_the_rows_stage(mlflow_client):
    from tasks.reproduce import write_report

    timings = {"train table-2/sft seed 0": 80.0, "evaluate table-2/sft seed 0": 15.0, "total": 100.0}
    folder = write_report("table-2", "test", 1, {}, {}, {}, {}, timings, name="timings-one-at-a-time")
    section = (Path(folder) / "report.md").read_text().split("## Where the time went")[1]
    assert "| rows (trained and evaluated) | 95.0 | 95.0% |" in section
    assert "| other: Prefect, MLflow, hashing | 5.0 | 5.0% |" in section


def test_a_worker_names_its_calling_flow_run_without_asking_prefects_api(prefect_harness, tmp_path):
    """A worker's MLflow tags carry the calling flow run's id and name from its environment; with an API
    that cannot be reached (or none: Prefect would start a temporary server of its own), they still do."""
    import subprocess
    import sys

    from prefect import flow

    from tasks.workers import worker_env

    @flow(flow_run_name="calling-row-{tag}")
    def calling(tag: str) -> tuple[dict, dict]:
        from prefect.runtime import flow_run

        return worker_env(1), {"id": flow_run.get_id(), "name": flow_run.get_name()}

    env, run = calling("x")
    assert run["name"] == "calling-row-x"
    env |= {"PREFECT_API_URL": "http://127.0.0.1:9/api", "PREFECT__FLOW_RUN_ID": run["id"]}
    code = "import json; from tasks.tracking import prefect_run_tags; print(json.dumps(prefect_run_tags()))"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "prefect.flow_run_id": run["id"],
        "prefect.flow_run_name": "calling-row-x",
    }
    assert "temporary server" not in done.stderr, f"took {time.perf_counter() - started:.1f} s"
