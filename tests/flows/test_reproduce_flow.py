"""``reproduce-paper`` end to end on the test profile, through a real Prefect server started here:

- two runs started at the same time (``table-8`` and ``figure-2``, sharing two rows) train every model once;
- after one trained row is deleted, the served deployment ``reproduce-paper/table-8`` with a parameter
  completes and retrains only that row;
- a fault injected into a training task fails the flow run (Prefect FAILED, the MLflow training run FAILED
  with the error), and the rerun resumes that run from its last checkpoint, each step logged once;
- the MLflow UI, in headless chromium, lists the table experiments and shows a table's runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from flows.serve import free_port, local_server
from tests.browser import NO_BROWSER, Chromium, have_chromium

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory, mlflow_client):
    """A real ``prefect server start`` for this module's flow runs (the processes below report to it)."""
    mlflow_client.search_experiments()  # create the MLflow store once, before several processes use it
    home = tmp_path_factory.mktemp("prefect-home")  # its own database: no flow runs of earlier sessions
    with ExitStack() as stack:
        yield local_server(stack, {**os.environ, "PREFECT_HOME": str(home)}, home)


def _env(server: str, **extra: str) -> dict:
    return {**os.environ, "PREFECT_API_URL": server, "OMP_NUM_THREADS": "1", **extra}


SEED = ["--set", "seed=11"]  # models of their own: other test modules train seed 0 of the same rows


def _start(module: str, args: list[str], env: dict, log: Path) -> subprocess.Popen:
    if module in ("flows.reproduce", "flows.serve") and "--pool" not in args:
        args = [*args, *SEED]
    handle = log.open("w")
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a process group of its own: _stop ends it with its children
    )


def _stop(process: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM to the process's group, SIGKILL after ``grace`` seconds. A ``prefect worker start`` passes
    SIGTERM on to its process worker as SIGINT, and that worker's shutdown sometimes hangs on its
    cancellation observer (seen once: still running 60 s later, retrying the server after the test)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)


def _finish(process: subprocess.Popen, log: Path, timeout: float = 900) -> list[str]:
    process.wait(timeout=timeout)
    lines = log.read_text().strip().splitlines()
    assert process.returncode == 0, "\n".join(lines[-40:])
    return lines


def _train_runs(client) -> list:
    experiment = client.get_experiment_by_name("train")
    return client.search_runs([experiment.experiment_id], max_results=1000) if experiment else []


def _rows_trained(report: str) -> dict[str, dict]:
    return json.loads((Path(report) / "rows.json").read_text())["rows"]


# Rows one at a time in the flow's own process (the paper profile's plan): a test-profile row's 2 steps take
# less time than a worker process's imports (~13 s), and the fault test below covers rows side by side.
IN_PROCESS = ["--parallel-rows", "1"]


@pytest.fixture(scope="module")
def concurrent(server, tmp_path_factory, mlflow_client):
    """``table-8`` and ``figure-2`` started at the same time; both train naive 1:1.5 and Customized-GRPO."""
    before = {r.info.run_id for r in _train_runs(mlflow_client)}
    began = int(time.time() * 1000)
    logs = tmp_path_factory.mktemp("concurrent")
    runs = {
        target: _start(
            "flows.reproduce",
            [target, "--profile", "test", *IN_PROCESS],
            _env(server),
            logs / f"{target}.log",
        )
        for target in ("table-8", "figure-2")
    }
    lines = {target: _finish(process, logs / f"{target}.log") for target, process in runs.items()}
    new = [r for r in _train_runs(mlflow_client) if r.info.run_id not in before]
    data = mlflow_client.get_experiment_by_name("data").experiment_id
    made = f"tags.stage = 'prepare-syncd' and attributes.start_time >= {began}"
    prepared = mlflow_client.search_runs([data], made)
    return lines, new, prepared


def test_two_runs_that_share_rows_train_each_model_once(concurrent, mlflow_client):
    lines, new, _ = concurrent
    reports = {target: lines[target][-1] for target in lines}
    rows = {target: _rows_trained(report) for target, report in reports.items()}
    keys = {info["config_hash"] for found in rows.values() for info in found.values()}
    # table-8: sft, naive 1:1.5, Customized-GRPO; figure-2: naive 1:1, naive 1:1.5, Customized-GRPO
    assert len(keys) == 4
    shared = {info["config_hash"]: info["trained"] for info in rows["table-8"].values()}
    for info in rows["figure-2"].values():
        if info["config_hash"] in shared:
            assert info["trained"] == shared[info["config_hash"]]  # one folder, found by the other run
    runs = {key: [r for r in _train_runs(mlflow_client) if r.data.tags["config_hash"] == key] for key in keys}
    assert {key: len(found) for key, found in runs.items()} == dict.fromkeys(keys, 1)  # each trained once
    assert {r.info.run_id for found in runs.values() for r in found} == {r.info.run_id for r in new}
    assert all(r.info.status == "FINISHED" for r in new)
    figure = Path(reports["figure-2"])
    assert (figure / "figures" / "figure-2-figure-2.png").is_file()
    assert "## Figure 2" in (figure / "report.md").read_text()


def test_a_run_logs_the_toy_zoo_once_and_its_training_list_once(concurrent, mlflow_client):
    lines, _, prepared = concurrent
    # every row's train and evaluate flow (4 trained, 4 evaluated) reads the training list: it is logged when
    # made or first read, not at each read (two runs started together may both find it unlogged: one each;
    # none when an earlier test of this session logged it)
    assert len(prepared) <= 2 and len({r.data.tags["config_hash"] for r in prepared}) <= 1
    for target in lines:
        header = (Path(lines[target][-1]) / "report.md").read_text().split("## ")[0]
        run_id = re.search(r"toy zoo: MLflow run (\w+) \(experiment toy-zoo", header).group(1)
        zoo = mlflow_client.get_run(run_id)
        assert zoo.info.status == "FINISHED" and zoo.data.tags["stage"] == "toy-zoo"
        checks = re.search(r"check and sample grid: (\S+)", header).group(1)
        assert (Path(checks) / "checks.json").is_file() and (Path(checks) / "grid.png").is_file()


def test_a_table_run_logs_a_parent_run_and_a_child_run_per_row(concurrent, mlflow_client):
    experiment = mlflow_client.get_experiment_by_name("table-8")
    runs = mlflow_client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(c.data.tags["row"] for c in children) == [
        "table-2/customized-grpo",
        "table-2/naive-1-1.5",
        "table-2/sft",
    ]
    for child in children:
        tags = child.data.tags
        assert (tags["table"], tags["profile"], tags["seed"]) == ("8", "test", "11")
        trained = mlflow_client.get_run(tags["train_run_id"])
        assert trained.data.tags["config_hash"] == tags["config_hash"]
        assert child.data.params["grpo.max_steps"] == "2" and child.data.params["row"] == tags["row"]
        assert child.data.metrics["train/steps"] == 2
        assert child.info.status == "FINISHED"
    artifacts = {a.path for a in mlflow_client.list_artifacts(parent.info.run_id, "table")}
    assert {"table/table-8.csv", "table/table-8.md"} <= artifacts
    assert parent.info.status == "FINISHED"
    running = mlflow_client.search_runs(
        [e.experiment_id for e in mlflow_client.search_experiments()], "attributes.status = 'RUNNING'"
    )
    assert running == []


def test_a_served_deployment_reuses_every_row_but_the_one_deleted(
    concurrent, server, tmp_path, mlflow_client
):
    lines, _, _ = concurrent
    victim = _rows_trained(lines["table-8"][-1])["table-2/sft seed 11"]
    shutil.rmtree(victim["trained"])  # the one row to retrain
    before = {r.info.run_id for r in _train_runs(mlflow_client)}
    log = tmp_path / "serve.log"
    args = ["--run", "table-8", "--profile", "test", *IN_PROCESS]
    lines = _finish(_start("flows.serve", args, _env(server), log), log)
    assert "reproduce-paper/table-8: COMPLETED" in lines
    report = Path(lines[-1])
    assert report.parts[-3:] == ("reports", "test", "table-8")
    assert "# Reproduction report: table-8 (test profile)" in (report / "report.md").read_text()
    new = [r for r in _train_runs(mlflow_client) if r.info.run_id not in before]
    assert [(r.data.tags["row"], r.data.tags["config_hash"]) for r in new] == [
        ("table-2/sft", victim["config_hash"])
    ]
    flows = httpx.post(f"{server}/flow_runs/filter", json={}, timeout=30).json()
    served = [f for f in flows if f["parameters"].get("target") == "table-8" and f.get("deployment_id")]
    assert len(served) == 1 and served[0]["parameters"]["profile"] == "test"  # the parameters reached it
    assert served[0]["parameters"]["parallel_rows"] == 1
    assert served[0]["state_type"] == "COMPLETED"


def test_a_fault_in_training_fails_the_flow_and_the_rerun_resumes(
    concurrent, server, tmp_path, mlflow_client
):
    args = ["table-8", "--profile", "test", "--set", "grpo.max_steps=3"]  # new GRPO models; SFT reused
    log = tmp_path / "fault.log"
    process = _start("flows.reproduce", args, _env(server, CGRPO_FAULT_AT_STEP="2"), log)
    process.wait(timeout=900)
    assert process.returncode != 0
    assert "injected fault at step 2" in log.read_text()
    # The two new GRPO rows train side by side (one per core here), so one or both hit the fault; after
    # the first failure no further row starts.
    failed = [r for r in _train_runs(mlflow_client) if r.info.status == "FAILED"]
    assert 1 <= len(failed) <= 2
    assert all("injected fault at step 2" in r.data.tags["cgrpo.error"] for r in failed)
    assert all(r.info.end_time is not None for r in failed)
    flows = httpx.post(
        f"{server}/flow_runs/filter", json={"sort": "EXPECTED_START_TIME_DESC", "limit": 20}, timeout=30
    ).json()
    top = next(f for f in flows if f["parameters"].get("overrides", {}).get("grpo.max_steps") == 3)
    assert top["state_type"] == "FAILED"

    log = tmp_path / "resume.log"  # the rows continue one after the other in the flow's own process
    _finish(_start("flows.reproduce", [*args, *IN_PROCESS], _env(server), log), log)
    for run in failed:
        resumed = mlflow_client.get_run(run.info.run_id)  # the same run, continued
        assert resumed.info.status == "FINISHED"
        steps = [m.step for m in mlflow_client.get_metric_history(resumed.info.run_id, "progress/step")]
        assert sorted(steps) == [0, 1, 2, 3]  # the held-out check at 0, then each step exactly once
    assert [r for r in _train_runs(mlflow_client) if r.info.status != "FINISHED"] == []


def test_the_mlflow_ui_lists_the_tables_and_shows_a_tables_runs(concurrent, tmp_path, mlflow_client):
    if not have_chromium():
        pytest.skip(NO_BROWSER)
    experiment = mlflow_client.get_experiment_by_name("table-8")
    runs = mlflow_client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    port = free_port()
    ui = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            os.environ["MLFLOW_TRACKING_URI"],
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    browser = None
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", ui)
        browser = Chromium(tmp_path)
        root = f"http://127.0.0.1:{port}/#/experiments"
        tab = browser.open(root)
        tab.wait_for("document.body.innerText.includes('table-8')")
        tab.screenshot(tmp_path / "experiments.png")
        tab = browser.open(f"{root}/{experiment.experiment_id}/runs?workflowType=machine_learning")
        # the parent run, and its children counted with it (the table shows them folded under it)
        runs = len(mlflow_client.search_runs([experiment.experiment_id]))
        tab.wait_for(
            f"document.body.innerText.includes({json.dumps(parent.info.run_name)})"
            f" && document.body.innerText.includes('{runs} matching runs')"
        )
        assert tab.screenshot(tmp_path / "table-8.png").stat().st_size > 10_000
        child = next(c for c in children if c.data.tags["row"] == "table-2/customized-grpo")
        tab = browser.open(f"{root}/{experiment.experiment_id}/runs/{child.info.run_id}")
        tab.wait_for("document.body.innerText.includes('train/reward/dino_seg_mean')")
        assert child.info.run_name in tab.js("document.body.innerText")
        tab.screenshot(tmp_path / "child.png")
    finally:
        if browser is not None:
            browser.close()
        os.killpg(ui.pid, 15)
        ui.wait(timeout=60)


def _flow_runs(server: str) -> list[dict]:
    return httpx.post(f"{server}/flow_runs/filter", json={}, timeout=30).json()


def test_a_process_work_pool_with_two_workers_runs_two_targets_at_once(server, tmp_path):
    env = _env(server)
    log = tmp_path / "deploy.log"
    lines = _finish(
        _start("flows.serve", ["--pool", "pair", "--profile", "test", "--gpus", "1"], env, log), log
    )
    assert any(re.fullmatch(r"1[24] deployments in work pool 'pair'; start a worker with:", x) for x in lines)
    limits = httpx.post(f"{server}/concurrency_limits/filter", json={}, timeout=30).json()
    assert {(c["tag"], c["concurrency_limit"]) for c in limits} >= {("gpu", 1)}
    workers = [
        _start(
            "prefect",
            ["worker", "start", "--pool", "pair", "--limit", "1", "--name", f"w{i}"],
            env,
            tmp_path / f"w{i}.log",
        )
        for i in range(2)
    ]
    try:
        ids = []
        for target in ("figure-3", "figure-6"):
            done = subprocess.run(
                [sys.executable, "-m", "prefect", "deployment", "run", f"reproduce-paper/{target}"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            ids.append(re.search(r"UUID: (\S+)", done.stdout).group(1))
        deadline = time.monotonic() + 600
        while True:
            runs = {r["id"]: r for r in _flow_runs(server) if r["id"] in ids}
            if all(r["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for r in runs.values()):
                break
            assert time.monotonic() < deadline, {k: r["state_type"] for k, r in runs.items()}
            time.sleep(2)
    finally:
        for worker in workers:
            _stop(worker)
    assert [runs[i]["state_type"] for i in ids] == ["COMPLETED", "COMPLETED"]
    # both workers were online in the pool, and every run was submitted by one of them
    online = httpx.post(f"{server}/work_pools/pair/workers/filter", json={}, timeout=30).json()
    assert {w["name"] for w in online} == {"w0", "w1"}
    logs = "".join((tmp_path / f"w{w}.log").read_text() for w in range(2))
    # both workers may pick the same run up; the server lets one start it and aborts the other's submission
    started = {
        i: logs.count(f"submitting flow run '{i}'") - logs.count(f"Aborted submission of flow run '{i}'")
        for i in ids
    }
    assert started == dict.fromkeys(ids, 1)


def _wait_http(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(url)


# Last in the module: it writes a second parent run into the table experiments the tests above count.
def test_a_run_of_some_rows_keeps_only_them_and_judges_the_claims_they_make(
    server, concurrent, tmp_path, mlflow_client
):
    """``--rows``: only the kept rows run (found in the store: no training), tables and claims read them."""
    from flows.reproduce import main as reproduce

    with pytest.raises(SystemExit, match="table-9/x: not rows of all"):
        reproduce(["all", "--profile", "test", "--rows", "table-2/naive-1-1.5,table-9/x"])
    before = {r.info.run_id for r in _train_runs(mlflow_client)}
    kept = ["table-2/naive-1-1.5", "table-2/customized-grpo"]
    log = tmp_path / "rows.log"
    lines = _finish(
        _start(
            "flows.reproduce",
            ["all", "--profile", "test", "--rows", ",".join(kept), *IN_PROCESS],
            _env(server),
            log,
        ),
        log,
    )
    report = Path(lines[-1])
    assert report.name == "all-2-rows"
    assert set(_rows_trained(str(report))) == {f"{row} seed 11" for row in kept}
    assert {r.info.run_id for r in _train_runs(mlflow_client)} == before  # trained by the concurrent runs
    verdicts = {v["claim"]: v["verdict"] for v in json.loads((report / "claims.json").read_text())}
    assert verdicts["naive-1-1-trades"] == "not measured"  # its rows were not kept
    assert verdicts["synergy-beats-naive"] != "not measured"
    table = (report.parents[2] / "tables" / "test" / "table-2" / "table-2.md").read_text()
    assert "| table-2/uno-base | UNO (Base) |" in table and "not in this run's rows |" in table
