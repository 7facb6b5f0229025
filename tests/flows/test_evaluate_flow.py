"""End to end: ``python -m flows.evaluate ROW`` on the test profile (ToyBench, 2 prompts per subject, 4
images each), its files, MLflow run and Hugging Face dataset; a SIGKILLed evaluation that resumes to the
same scores; two accelerate processes; the paper profile's dry run on the real DreamBench; bad input;
``python -m flows.tables``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.evaluate import main
from tests.conftest import REPO_ROOT, SHARED

pytestmark = pytest.mark.slow
DREAMBENCH = SHARED / "dreambench" / "dataset"
METRICS = ["dino", "clip_i", "clip_t", "hpsv3"]


@pytest.fixture(scope="module")
def base_eval(prefect_harness):
    """``table-2/uno-base`` evaluated on the test profile through the CLI."""
    return Path(main(["table-2/uno-base", "--profile", "test"]))


def _worker(spec: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tasks.eval_worker", str(spec)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _spec(base_eval: Path, folder: Path) -> Path:
    spec = json.loads((base_eval / "spec.json").read_text())
    spec["folder"] = str(folder)
    folder.mkdir(parents=True)
    path = folder.parent / f"{folder.name}.json"
    path.write_text(json.dumps(spec))
    return path


def _env(tmp_path: Path, name: str) -> dict:
    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / f'{name}.db'}", "TQDM_DISABLE": "1"}


def test_the_cli_evaluates_a_row_into_a_complete_folder(base_eval, mlflow_client, capsys):
    plan = pd.read_parquet(base_eval / "images.parquet")
    scores = pd.read_parquet(base_eval / "scores.parquet")
    assert len(plan) == len(scores) == 10 * 2 * 4  # 10 of ToyBench's 30 subjects x 2 prompts x 4 images
    assert (plan.groupby("item")["seed"].nunique() == 4).all()
    assert scores[["item", "image_index"]].equals(plan[["item", "image_index"]])
    assert np.isfinite(scores[METRICS].to_numpy()).all()
    assert all((base_eval / f).is_file() for f in plan["file_name"])
    summary = pd.read_csv(base_eval / "summary.csv")
    assert summary.loc[0, "DINO (toy DINO v1)"] == pytest.approx(scores["dino"].mean())
    assert summary.loc[0, "HPS-v3 (toy HPSv3)"] == pytest.approx(scores["hpsv3"].mean())
    assert (base_eval / "figures" / "samples.png").is_file()
    (run,) = mlflow_client.search_runs(
        [mlflow_client.get_experiment_by_name("evaluate").experiment_id], "tags.row = 'table-2/uno-base'"
    )
    assert run.info.status == "FINISHED"
    assert run.data.metrics["dino"] == pytest.approx(scores["dino"].mean())
    assert run.data.params["images"] == "80" and "toy DINO v1" in run.data.params["metric.dino"]
    assert main(["table-2/uno-base", "--profile", "test"]) == str(base_eval)  # reused, not redone
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(base_eval)
    assert len(mlflow_client.search_runs([run.info.experiment_id], "tags.row = 'table-2/uno-base'")) == 1


def test_the_image_set_loads_as_a_hugging_face_dataset(base_eval):
    import datasets

    data = datasets.load_dataset("imagefolder", data_dir=str(base_eval), split="train")
    scores = pd.read_parquet(base_eval / "scores.parquet")
    assert data.num_rows == len(scores)
    assert (
        data[5]["dino"] == pytest.approx(scores.loc[5, "dino"])
        and data[5]["prompt"] == scores.loc[5, "prompt"]
    )
    assert data[5]["image"].size == (32, 32)


def test_a_killed_evaluation_resumes_without_redoing_finished_images(base_eval, tmp_path):
    killed = tmp_path / "killed"
    spec = _spec(base_eval, killed)
    proc = _worker(spec, _env(tmp_path, "killed"))
    deadline = time.monotonic() + 300
    while len(list(killed.glob("parts/*.parquet"))) < 4:  # 4 of 15 units done
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "scores.parquet").exists()
    finished = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (killed / "images").glob("*.png")}
    again = _worker(spec, _env(tmp_path, "killed"))
    assert again.wait(timeout=300) == 0, again.stderr.read().decode()[-3000:]
    for name, stamp in finished.items():
        path = killed / "images" / name
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == stamp, f"{name} was generated again"
    full, resumed = pd.read_parquet(base_eval / "scores.parquet"), pd.read_parquet(killed / "scores.parquet")
    assert resumed[METRICS].equals(full[METRICS])  # identical scores


def test_two_accelerate_processes_score_every_image_once(base_eval, tmp_path):
    from cgrpo_core.training.distributed import launch_command

    spec = _spec(base_eval, tmp_path / "two")
    env = {**_env(tmp_path, "two"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        launch_command(2, "tasks.eval_worker", [str(spec)], "accelerate"),
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    one, two = (
        pd.read_parquet(base_eval / "scores.parquet"),
        pd.read_parquet(tmp_path / "two" / "scores.parquet"),
    )
    assert two[["item", "image_index"]].equals(one[["item", "image_index"]])  # none lost, none twice
    assert not two.duplicated(["item", "image_index"]).any()
    # each unit is the same work whichever rank does it; other thread counts may move a pixel by one level
    assert np.abs(two[METRICS].to_numpy() - one[METRICS].to_numpy()).max() < 0.05


def test_the_paper_dry_run_plans_the_authors_750_items_with_paired_seeds(prefect_harness, capsys):
    if not DREAMBENCH.is_dir():
        pytest.skip(f"no DreamBench at {DREAMBENCH}")
    folders = {
        row: Path(main([row, "--profile", "paper", "--dreambench-root", str(DREAMBENCH), "--dry-run"]))
        for row in ("table-2/uno-base", "table-2/customized-grpo")
    }
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(folders["table-2/customized-grpo"])
    plans = {row: pd.read_parquet(folder / "images.parquet") for row, folder in folders.items()}
    plan = plans["table-2/uno-base"]
    assert len(plan) == 3000 and plan["item"].nunique() == 750
    assert (plan.groupby("item")["seed"].nunique() == 4).all() and plan["seed"].nunique() == 3000
    assert plan["seed"].equals(plans["table-2/customized-grpo"]["seed"])  # the same for every row
    authors = json.loads((REPO_ROOT / "data" / "reference" / "dreambench_singleip.json").read_text())
    items = plan.drop_duplicates("item")
    assert items["prompt"].tolist() == [entry["prompt"] for entry in authors]
    assert [Path(r).parent.name + "/" + Path(r).name for r in items["reference"]] == [
        "/".join(entry["image_paths"][0].split("/")[-2:]) for entry in authors
    ]
    assert not (folders["table-2/uno-base"] / "images").exists()  # nothing generated


def test_bad_input_is_named(base_eval, tmp_path, prefect_harness):
    with pytest.raises(SystemExit, match="unknown row.*table-2/uno-base"):
        main(["table-2/nope", "--profile", "test"])
    with pytest.raises(SystemExit, match="nowhere"):
        main(
            [
                "table-2/uno-base",
                "--profile",
                "paper",
                "--dreambench-root",
                str(tmp_path / "nowhere"),
                "--dry-run",
            ]
        )
    with pytest.raises(SystemExit, match="--dreambench-root"):
        main(["table-2/uno-base", "--profile", "paper", "--dry-run"])
    # a corrupt reference photo: named before anything is generated; what was there stays
    spec = json.loads((base_eval / "spec.json").read_text())
    bench = tmp_path / "bench"
    shutil.copytree(spec["bench"][0], bench)
    photo = sorted(bench.glob("*/*.png"))[0]
    photo.write_bytes(b"not an image")
    spec["bench"][0] = str(bench)
    folder = tmp_path / "corrupt"
    shutil.copytree(base_eval / "images", folder / "images")
    spec["folder"] = str(folder)
    (tmp_path / "corrupt.json").write_text(json.dumps(spec))
    # a trained row whose LoRA is gone
    spec = json.loads((base_eval / "spec.json").read_text())
    spec |= {
        "folder": str(tmp_path / "nolora"),
        "model_folder": str(tmp_path / "trained"),
        "row": "table-2/sft",
    }
    (tmp_path / "nolora.json").write_text(json.dumps(spec))
    (tmp_path / "nolora").mkdir()
    # both workers at once: each spends most of its time importing
    corrupt = _worker(tmp_path / "corrupt.json", _env(tmp_path, "corrupt"))
    nolora = _worker(tmp_path / "nolora.json", _env(tmp_path, "nolora"))
    corrupt_err, nolora_err = (p.communicate(timeout=300)[1].decode() for p in (corrupt, nolora))
    assert corrupt.returncode != 0 and nolora.returncode != 0
    assert photo.name in corrupt_err and len(list((folder / "images").glob("*.png"))) == 80
    assert "pytorch_lora_weights.safetensors is missing" in nolora_err


def test_a_table_shows_the_evaluated_rows_beside_the_paper(base_eval, mlflow_client, capsys):
    from flows.tables import main as table_main

    experiment = mlflow_client.get_experiment_by_name("table-2")
    earlier = (
        {r.info.run_id for r in mlflow_client.search_runs([experiment.experiment_id])}
        if experiment
        else set()
    )
    folder = Path(table_main(["2", "--profile", "test"]))
    table = pd.read_csv(folder / "table-2.csv")
    base = table.set_index("row").loc["table-2/uno-base"]
    scores = pd.read_parquet(base_eval / "scores.parquet")
    assert base["DINO (toy DINO v1) measured"] == pytest.approx(scores["dino"].mean())
    assert base["DINO (toy DINO v1) paper"] == pytest.approx(0.760)
    assert base["status"] == "measured"
    assert (table.set_index("row").loc["table-2/rpo", "status"]) == "not evaluated yet"
    assert "| table-2/uno-base | UNO (Base) |" in (folder / "table-2.md").read_text()
    assert (folder / "tradeoff.png").is_file()
    runs = mlflow_client.search_runs([mlflow_client.get_experiment_by_name("table-2").experiment_id])
    runs = [r for r in runs if r.info.run_id not in earlier]  # other tests may have built table 2 before
    (run,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    (child,) = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == run.info.run_id]
    assert child.data.tags["row"] == "table-2/uno-base" and child.data.tags["table"] == "2"
    assert child.data.metrics["dino"] == pytest.approx(scores["dino"].mean())
    assert run.data.metrics["table-2/uno-base/dino"] == pytest.approx(scores["dino"].mean())
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(folder)
