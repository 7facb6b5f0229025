"""End to end: the data flows on the test profile under a Prefect test server, checked through MLflow."""

import json
from pathlib import Path

import pytest

from cgrpo_core.config import experiment_config
from cgrpo_core.data.prepare import read_table
from flows.data import main, prepare_dreambench, prepare_syncd, toy_filter_check, toy_world

pytestmark = pytest.mark.slow
TEST = experiment_config("test")


def _artifacts(client, run_id):
    found = []
    for top in client.list_artifacts(run_id):
        found += [a.path for a in client.list_artifacts(run_id, top.path)] if top.is_dir else [top.path]
    return sorted(found)


def _runs(client, stage):
    experiment = client.get_experiment_by_name("data")
    runs = client.search_runs([experiment.experiment_id], f"tags.stage = '{stage}'")
    return sorted(runs, key=lambda r: r.info.start_time)


def test_toy_filter_check_logs_prepare_and_check_runs(prefect_harness, mlflow_client, tmp_path, monkeypatch):
    # a workspace of its own: every set is scored here, whichever test prepared the same data before
    monkeypatch.setenv("CGRPO_WORKSPACE", str(tmp_path))
    shares = json.loads(Path(toy_filter_check(TEST)).read_text())
    assert shares["good_sets"] + shares["bad_sets"] == TEST.toy.world.syncd_sets
    assert 0.0 <= shares["bad_removed_share"] <= 1.0
    prepared, checked = (
        _runs(mlflow_client, "prepare-syncd")[-1],
        _runs(mlflow_client, "toy-filter-check")[-1],
    )
    assert prepared.info.status == checked.info.status == "FINISHED"
    assert prepared.data.tags["profile"] == "test" and prepared.data.tags["prefect.flow_run_id"]
    assert prepared.data.params["score.identity_scorer"] == "histogram"
    assert prepared.data.metrics["sets_read"] == 40 and prepared.data.metrics["scored"] == 40
    assert _artifacts(mlflow_client, prepared.info.run_id) == [
        "figures/histograms.png",
        "tables/report.json",
        "tables/train.json",
    ]
    assert checked.data.metrics["toy_bad_removed_share"] == shares["bad_removed_share"]


def test_second_run_reuses_every_result(prefect_harness, mlflow_client):
    first = prepare_syncd(TEST)
    stamps = {p.name: p.stat().st_mtime_ns for p in Path(first).iterdir()}
    world = toy_world(TEST)
    world_stamp = (Path(world) / "world.json").stat().st_mtime_ns
    assert prepare_syncd(TEST) == first
    assert {p.name: p.stat().st_mtime_ns for p in Path(first).iterdir()} == stamps
    assert (Path(toy_world(TEST)) / "world.json").stat().st_mtime_ns == world_stamp
    last = _runs(mlflow_client, "prepare-syncd")[-1]
    assert last.data.metrics["scored"] == 0 and last.data.metrics["reused"] == 40  # nothing scored again
    logged = len(_runs(mlflow_client, "prepare-syncd"))
    assert prepare_syncd(TEST, log_reuse=False) == first  # as a row reads it: no run once one is logged
    assert len(_runs(mlflow_client, "prepare-syncd")) == logged


def test_prepare_dreambench_and_cli(prefect_harness, capsys):
    items = read_table(Path(prepare_dreambench(TEST)) / "items.parquet")
    assert len(items) == 750 and items["subject"].nunique() == 30
    out = main(["prepare-syncd", "--profile", "test"])
    assert Path(out, "train.json").is_file()
    assert capsys.readouterr().out.strip().splitlines()[-1] == out  # the result folder, last
    with pytest.raises(SystemExit, match="no field 'top_kk'"):
        main(["prepare-syncd", "--profile", "test", "--set", "data.filter.top_kk=3"])


def test_prepare_syncd_scores_with_the_toy_zoo(prefect_harness, mlflow_client):
    """The toy profile's path on the test sizes: the reward zoo (test sizes) is trained on the toy world,
    its DINOv2 and aesthetic head score the toy SynCD, the filter runs on their scores."""
    config = experiment_config(
        "test",
        changes={"data.score.identity_scorer": "embedding", "data.score.aesthetic_scorer": "laion_aesthetic"},
    )
    out = prepare_syncd(config)
    zoos = (Path(out).parents[1] / "reward_zoo").iterdir()
    assert any((zoo / "dinov2" / "config.json").is_file() for zoo in zoos)
    run = _runs(mlflow_client, "prepare-syncd")[-1]
    assert run.data.params["score.identity_model.model_id"].startswith("toy-zoo/")
    assert run.data.metrics["scored"] == 40
    decisions = read_table(Path(out) / "decisions.parquet")
    assert len(decisions) == 40 and decisions["mean_aesthetic"].between(0, 12).all()
