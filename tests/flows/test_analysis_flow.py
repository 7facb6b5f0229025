"""End to end: the analysis flow under a Prefect test server, checked through MLflow."""

import os
from pathlib import Path

import pandas as pd
import pytest

from cgrpo_core.analysis import analysis_config
from cgrpo_core.config import experiment_config
from cgrpo_core.schema import config_hash
from cgrpo_core.store import code_version
from flows.analysis import analysis, main
from tests.conftest import seed_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_config():
    cfg = analysis_config(experiment_config("test"), "paper_default")
    return cfg.model_copy(update={"name": "analysis-test", "synthetic_groups": 20, "synthetic_group_size": 6})


def _artifacts(client, run_id):
    found = []
    for top in client.list_artifacts(run_id):
        found += [a.path for a in client.list_artifacts(run_id, top.path)] if top.is_dir else [top.path]
    return sorted(found)


def _run_of(client, folder):
    experiment = client.get_experiment_by_name("analysis")
    runs = client.search_runs([experiment.experiment_id], f"tags.config_hash = '{Path(folder).name}'")
    return runs[0]


def test_flow_logs_figures_tables_tags(prefect_harness, mlflow_client, small_config):
    folder = analysis(small_config)
    run = _run_of(mlflow_client, folder)
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"
    experiment = mlflow_client.get_experiment(run.info.experiment_id)
    assert experiment.name == "analysis"
    assert run.data.tags["profile"] == "test"
    code = code_version("cgrpo_core.analysis", "cgrpo_core.plots")
    assert run.data.tags["config_hash"] == config_hash(small_config, {"code": code}) == Path(folder).name
    assert run.data.tags["preset"] == "paper_default"
    assert run.data.tags["samples"] == "synthetic"
    assert run.data.tags["prefect.flow_run_id"]
    assert run.data.params["advantage.alpha"] == "0.5" and run.data.params["tdw.schedule"] == "paper"
    assert _artifacts(mlflow_client, run_id) == [
        "figures/fig3_sars_cross_section.png",
        "figures/fig6_tdw_schedules.png",
        "figures/fig7_alignment.png",
        "tables/fig3_sars_cross_section.csv",
        "tables/fig6_tdw_schedules.csv",
        "tables/fig7_by_category.csv",
        "tables/fig7_samples.csv",
    ]
    shares = [
        run.data.metrics[f"share_{k}"] for k in ("both_positive", "both_negative", "conflict", "neutral")
    ]
    assert sum(shares) == pytest.approx(1.0)


def test_flow_with_given_samples_and_reuse(prefect_harness, mlflow_client, small_config, tmp_path):
    samples = tmp_path / "rewards.csv"
    pd.DataFrame(
        {
            "group": [0, 0, 0, 0, 1, 1, 1, 1],
            "reward_id": [1, 2, 3, 4, 1, 1, 1, 1],
            "reward_prompt": [4, 1, 3, 2, 5, 6, 7, 8],
        }
    ).to_csv(samples, index=False)
    first = analysis(small_config, str(samples))
    run = _run_of(mlflow_client, first)
    assert run.data.tags["samples"] == "rewards.csv"
    # group 0: [id_failure, poor, perfect, prompt_failure]; group 1: a_id = 0 everywhere -> neutral
    assert run.data.metrics["share_conflict"] == pytest.approx(2 / 8)
    assert run.data.metrics["share_neutral"] == pytest.approx(4 / 8)
    out = Path(first)
    assert out.parent == Path(os.environ["CGRPO_WORKSPACE"]) / "outputs" / "store" / "analysis"
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    second = analysis(small_config, str(samples))  # same inputs: files reused, a new run logged
    assert second == first
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes
    experiment = mlflow_client.get_experiment_by_name("analysis")
    assert len(mlflow_client.search_runs([experiment.experiment_id], f"tags.config_hash = '{out.name}'")) == 2


def test_cli_reads_a_preset_and_prints_its_folder_last(prefect_harness, mlflow_client, capsys):
    folder = main(["--profile", "test", "--preset", "released_code"])
    assert capsys.readouterr().out.strip().splitlines()[-1] == folder
    run = _run_of(mlflow_client, folder)
    assert run.data.params["advantage.alpha"] == "0.4" and run.data.params["tdw.schedule"] == "released"
    assert run.data.tags["preset"] == "released_code" and run.data.params["num_steps"] == "4"


def test_bad_samples_fail_the_flow_with_a_clear_error(prefect_harness, small_config, tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"group": [0, 0], "reward_id": [1.0, float("nan")], "reward_prompt": [1, 2]}).to_csv(
        bad, index=False
    )
    with pytest.raises(ValueError, match="non-finite"):
        analysis(small_config, str(bad))


def test_main_job_logs_to_the_default_store(test_zoo, tmp_path, monkeypatch, capfd):
    """The first stages (./run.sh stages -> flows.main) in a fresh workspace with no MLflow settings, at
    the test sizes: every stage logs its runs to <workspace>/mlruns/mlflow.db. The workspace's store
    starts with the session's test zoo (its training is the zoo flow's tests' business, not this one's)."""
    from mlflow.tracking import MlflowClient

    from flows.main import main

    seed_store(tmp_path, [test_zoo[k] for k in ("toy_world", "reward_zoo", "policy_zoo", "checks")])
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("CGRPO_WORKSPACE", str(tmp_path))
    out = main(["--profile", "test"])
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    runs = {
        name: client.search_runs([client.get_experiment_by_name(name).experiment_id])
        for name in ("analysis", "toy-zoo", "data", "evaluate", "table-2")
    }
    assert [r.data.tags["config_hash"] for r in runs["analysis"]] == [Path(out["analysis"]).name]
    assert out["run_id"] in {r.info.run_id for r in runs["toy-zoo"]}
    assert {r.data.tags["stage"] for r in runs["data"]} == {"prepare-syncd", "prepare-dreambench"}
    assert all(
        r.info.status == "FINISHED" and r.data.tags["profile"] == "test" for rs in runs.values() for r in rs
    )
    assert Path(out["train_json"]).is_file() and Path(out["policy_zoo"], "policy_zoo.json").is_file()
    assert Path(out["evaluation (uno-base)"], "summary.csv").is_file()
    assert [r.data.tags["row"] for r in runs["evaluate"]] == ["table-2/uno-base"]
    assert Path(out["table 2"], "table-2.md").is_file()
    captured = capfd.readouterr()
    assert "mlflow ui --backend-store-uri sqlite:///" in captured.out
    # no warning a user cannot act on (transformers' "requires torchvision" fallback notice)
    assert "torchvision" not in captured.err + captured.out
