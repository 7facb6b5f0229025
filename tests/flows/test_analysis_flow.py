"""End to end: the analysis flow under a Prefect test server, checked through MLflow."""

import os
from pathlib import Path

import pandas as pd
import pytest

from cgrpo_core.config import AnalysisConfig, config_hash
from flows.analysis import analysis
from tasks.analysis import ANALYSIS_CODE_VERSION

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_config():
    return AnalysisConfig(profile="test", name="analysis-test", synthetic_groups=20, synthetic_group_size=6)


def _artifacts(client, run_id):
    found = []
    for top in client.list_artifacts(run_id):
        found += [a.path for a in client.list_artifacts(run_id, top.path)] if top.is_dir else [top.path]
    return sorted(found)


def test_flow_logs_figures_tables_tags(prefect_harness, mlflow_client, small_config):
    run_id = analysis(small_config)
    run = mlflow_client.get_run(run_id)
    assert run.info.status == "FINISHED"
    experiment = mlflow_client.get_experiment(run.info.experiment_id)
    assert experiment.name == "analysis"
    assert run.data.tags["profile"] == "test"
    assert run.data.tags["config_hash"] == config_hash(small_config, {"code": ANALYSIS_CODE_VERSION})
    assert run.data.tags["samples"] == "synthetic"
    assert run.data.tags["prefect.flow_run_id"]
    assert run.data.params["advantage.alpha"] == "0.5" and run.data.params["tdw.schedule"] == "paper"
    assert _artifacts(mlflow_client, run_id) == [
        "figures/fig3_sars_cross_section.png",
        "figures/fig6_tdw_schedules.png",
        "figures/fig7_advantage_alignment.png",
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
    run = mlflow_client.get_run(first)
    assert run.data.tags["samples"] == "rewards.csv"
    # group 0: [id_failure, poor, perfect, prompt_failure]; group 1: a_id = 0 everywhere -> neutral
    assert run.data.metrics["share_conflict"] == pytest.approx(2 / 8)
    assert run.data.metrics["share_neutral"] == pytest.approx(4 / 8)
    out = Path(os.environ["CGRPO_WORKSPACE"]) / "outputs" / "analysis" / run.data.tags["config_hash"]
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    second = analysis(small_config, str(samples))  # same inputs: files reused, a new run logged
    assert second != first
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes


def test_bad_samples_fail_the_flow_with_a_clear_error(prefect_harness, small_config, tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"group": [0, 0], "reward_id": [1.0, float("nan")], "reward_prompt": [1, 2]}).to_csv(
        bad, index=False
    )
    with pytest.raises(ValueError, match="non-finite"):
        analysis(small_config, str(bad))


def test_main_job_logs_to_the_default_store(prefect_harness, tmp_path, monkeypatch, capsys):
    """The README's main command (./run.sh -> flows.main) in a fresh workspace with no MLflow settings, at
    the test sizes: every stage logs its runs to <workspace>/mlruns/mlflow.db."""
    from mlflow.tracking import MlflowClient

    from flows.main import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("CGRPO_WORKSPACE", str(tmp_path))
    out = main(["--profile", "test"])
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    runs = {
        name: client.search_runs([client.get_experiment_by_name(name).experiment_id])
        for name in ("analysis", "toy-zoo", "data")
    }
    assert [r.info.run_id for r in runs["analysis"]] == [out["analysis_run"]]
    assert out["run_id"] in {r.info.run_id for r in runs["toy-zoo"]}
    assert {r.data.tags["stage"] for r in runs["data"]} == {"prepare-syncd", "prepare-dreambench"}
    assert all(
        r.info.status == "FINISHED" and r.data.tags["profile"] == "test" for rs in runs.values() for r in rs
    )
    assert Path(out["train_json"]).is_file() and Path(out["policy_zoo"], "policy_zoo.json").is_file()
    assert "mlflow ui --backend-store-uri sqlite:///" in capsys.readouterr().out
