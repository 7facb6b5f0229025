"""End to end: ``python -m flows.train ROW`` on the test profile, logged to MLflow, reused, and a training
process killed with SIGKILL after a checkpoint that, run again, ends at the uninterrupted run's LoRA."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from flows.train import main
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def _runs(client, row, key):
    """The MLflow runs that trained ``row``'s model ``key`` (other test modules train other seeds of it)."""
    experiment = client.get_experiment_by_name("train")
    found = f"tags.row = '{row}' and tags.config_hash = '{key}'"
    return client.search_runs([experiment.experiment_id], found) if experiment else []


def _steps(client, run_id, metric):
    return sorted(m.step for m in client.get_metric_history(run_id, metric))


@pytest.fixture(scope="module")
def naive_row(prefect_harness):
    """``table-2/naive-1-1`` trained on the test profile through the CLI (2 steps)."""
    return main(["table-2/naive-1-1", "--profile", "test"])


def test_the_cli_trains_a_row_logs_every_step_and_prints_its_folder(naive_row, mlflow_client, capsys):
    folder = Path(naive_row)
    assert (folder / "lora" / "pytorch_lora_weights.safetensors").is_file()
    assert any(
        v.abs().sum() > 0
        for k, v in load_file(folder / "lora" / "pytorch_lora_weights.safetensors").items()
        if "lora_B" in k
    )
    history = json.loads((folder / "history.json").read_text())
    assert len(history) == 2 and history[0]["ratio_first_update"] == 1.0
    (run,) = _runs(mlflow_client, "table-2/naive-1-1", folder.name)
    assert run.info.status == "FINISHED"
    assert run.data.tags["method"] == "grpo" and run.data.tags["profile"] == "test"
    assert run.data.tags["config_hash"] == folder.name
    assert run.data.params["grpo.advantage.method"] == "linear" and run.data.params["grpo.tdw.w_max"] == "0.5"
    assert _steps(mlflow_client, run.info.run_id, "loss") == [1, 2]
    assert _steps(mlflow_client, run.info.run_id, "heldout/clip_t") == [0, 2]  # before and after
    assert _steps(mlflow_client, run.info.run_id, "heldout/dino_seg") == [0, 2]
    for name in ("reward/dino_seg_mean", "advantage/combined_std", "conflict/conflict", "clip_fraction"):
        assert name in run.data.metrics, name
    artifacts = [a.path for a in mlflow_client.list_artifacts(run.info.run_id, "figures")]
    assert artifacts == ["figures/curves.png"]
    capsys.readouterr()
    again = main(["table-2/naive-1-1", "--profile", "test"])  # reused: no second run
    assert again == naive_row and capsys.readouterr().out.strip().splitlines()[-1] == naive_row
    assert len(_runs(mlflow_client, "table-2/naive-1-1", folder.name)) == 1


def test_the_cli_lists_rows_and_names_bad_ones(capsys, prefect_harness):
    main(["--list", "--profile", "test"])
    listing = capsys.readouterr().out
    assert "table-2/naive-1-1.5  table-3/naive-grpo" in listing
    with pytest.raises(SystemExit, match="unknown row 'table-2/naive'"):
        main(["table-2/naive", "--profile", "test"])
    with pytest.raises(SystemExit, match="reported, not rerun"):
        main(["table-1/dreambooth", "--profile", "test"])
    with pytest.raises(SystemExit, match="set data.syncd_root"):
        main(["table-2/sft", "--profile", "paper"])


def _worker(spec: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tasks.train_worker", str(spec)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _spec(naive_row, folder: Path, steps: int) -> Path:
    spec = json.loads((Path(naive_row) / "spec.json").read_text())
    spec["config"]["grpo"]["max_steps"] = steps
    spec["config"]["run"]["checkpoint_every"] = 1
    spec["folder"] = str(folder)
    folder.mkdir(parents=True)
    path = folder.parent / f"{folder.name}.json"
    path.write_text(json.dumps(spec))
    return path


def test_a_killed_run_resumes_to_the_uninterrupted_lora_in_one_mlflow_run(naive_row, tmp_path):
    from mlflow.tracking import MlflowClient

    steps = 6
    envs = {}
    for name in ("full", "killed"):
        uri = f"sqlite:///{tmp_path / f'{name}.db'}"
        # one thread each: the uninterrupted run trains beside the killed one (one core each)
        envs[name] = {**os.environ, "MLFLOW_TRACKING_URI": uri, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    full = _worker(_spec(naive_row, tmp_path / "full", steps), envs["full"])
    spec = _spec(naive_row, tmp_path / "killed", steps)
    proc = _worker(spec, envs["killed"])
    latest = tmp_path / "killed" / "checkpoints" / "latest"
    deadline = time.monotonic() + 300
    while not (latest.is_file() and latest.read_text() >= "step-000002"):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "lora").exists()  # killed before the end
    again = _worker(spec, envs["killed"])
    assert again.wait(timeout=300) == 0, again.stderr.read().decode()[-3000:]
    assert full.wait(timeout=300) == 0, full.stderr.read().decode()[-3000:]
    lora = "lora/pytorch_lora_weights.safetensors"
    a, b = load_file(tmp_path / "full" / lora), load_file(tmp_path / "killed" / lora)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)  # bit-identical
    client = MlflowClient(tracking_uri=envs["killed"]["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert _steps(client, runs[0].info.run_id, "loss") == list(range(1, steps + 1))  # each step once
    assert _steps(client, runs[0].info.run_id, "heldout/clip_t") == [0, 2, 4, 6]


def test_an_empty_training_list_fails_the_run_with_the_cause(naive_row, tmp_path):
    from mlflow.tracking import MlflowClient

    spec_path = _spec(naive_row, tmp_path / "empty", 2)
    spec = json.loads(spec_path.read_text())
    (tmp_path / "train.json").write_text("[]")
    spec["train_json"] = str(tmp_path / "train.json")
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'empty.db'}"}
    proc = _worker(spec_path, env)
    assert proc.wait(timeout=300) != 0
    assert "train.json is empty" in proc.stderr.read().decode()
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    (run,) = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    assert run.info.status == "FAILED" and "train.json is empty" in run.data.tags["cgrpo.error"]


@pytest.mark.parametrize("row", ["table-2/sft", "table-2/rpo"])
def test_sft_and_rpo_rows_train_two_steps_and_log_them(row, naive_row, mlflow_client):
    folder = Path(main([row, "--profile", "test"]))
    lora = load_file(folder / "lora" / "pytorch_lora_weights.safetensors")
    assert any(float(v.abs().sum()) > 0 for k, v in lora.items() if "lora_B" in k)  # B starts at 0
    assert (folder / "checkpoints" / "latest").read_text() == "step-000002"
    (run,) = _runs(mlflow_client, row, folder.name)
    assert run.info.status == "FINISHED" and run.data.tags["method"] == row.split("/")[1]
    assert _steps(mlflow_client, run.info.run_id, "loss") == [1, 2]
    if row.endswith("rpo"):
        assert (folder / "preferences.pt").is_file()
        assert _steps(mlflow_client, run.info.run_id, "margin") == [1, 2]


def test_the_base_row_trains_nothing(naive_row):
    folder = Path(main(["table-2/uno-base", "--profile", "test"]))
    assert json.loads((folder / "run.json").read_text())["method"] == "base"
    assert not (folder / "lora").exists()


def test_two_torchrun_processes_train_the_single_process_lora(naive_row, tmp_path):
    """The launch helper's command (torchrun, gloo on CPU): the row's 2 pairs per step split over 2 ranks
    give the LoRA of the single-process run, within the tolerance derived below."""
    from cgrpo_core.training.distributed import launch_command

    spec = _spec(naive_row, tmp_path / "dp", 2)  # the naive row's config: 2 steps, seed 0, 2 pairs a step
    data = json.loads(spec.read_text())
    data["config"]["grpo"]["prompts_per_step"] = 1  # per process: the same 2 pairs a step
    spec.write_text(json.dumps(data))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'dp.db'}", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        launch_command(2, "tasks.train_worker", [str(spec)]), cwd=REPO_ROOT, env=env, capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    lora = "lora/pytorch_lora_weights.safetensors"
    one, two = load_file(Path(naive_row) / lora), load_file(tmp_path / "dp" / lora)
    assert one.keys() == two.keys()
    # The all-reduce sums the gradients in another order. Within a group the advantages sum to 0, so some
    # gradient elements nearly cancel and keep only rounding; AdamW divides by the gradient's RMS, so such
    # an element's update may differ by up to its full size (|m / sqrt(v)| <= ~1: about lr a step, either
    # sign), while every other element agrees to rounding. Measured (2 steps, lr 2e-3, KL 0.04): 2 of
    # 28,672 elements differ by more than 4e-5 (at most 4.2e-5), the mean difference is 4e-8. So: no element
    # beyond 2 x lr x steps, and the trained B matrices (zero at the start: their norm is the update's) agree
    # to 1e-3 of their norm (measured: 1.6e-4).
    config = json.loads(spec.read_text())["config"]["grpo"]
    assert (
        max(float((one[k] - two[k]).abs().max()) for k in one)
        < 2 * config["learning_rate"] * config["max_steps"]
    )
    b = [k for k in one if "lora_B" in k]
    diff = sum(float((one[k] - two[k]).norm() ** 2) for k in b) ** 0.5
    size = sum(float(one[k].norm() ** 2) for k in b) ** 0.5
    assert diff < 1e-3 * size, (diff, size)
    assert any(float(one[k].abs().sum()) > 0 for k in one if "lora_B" in k)
