"""End to end: the data flows on the test profile under a Prefect test server, checked through MLflow."""

from pathlib import Path

import pytest

from cgrpo_core.config import override
from cgrpo_core.data.config import DATA_PROFILE_OVERRIDES, data_config
from cgrpo_core.data.prepare import read_table
from flows.data import main, prepare_dreambench, prepare_syncd, toy_filter_check, toy_world

pytestmark = pytest.mark.slow
ZOO_SCORING = {k: v for k, v in DATA_PROFILE_OVERRIDES["toy"].items() if k.startswith("score.")}


def _artifacts(client, run_id):
    found = []
    for top in client.list_artifacts(run_id):
        found += [a.path for a in client.list_artifacts(run_id, top.path)] if top.is_dir else [top.path]
    return sorted(found)


def test_toy_filter_check_logs_prepare_and_check_runs(prefect_harness, mlflow_client):
    shares = toy_filter_check(profile="test")
    assert shares["toy_bad_sets"] + shares["toy_good_sets"] == data_config("test").toy_world.syncd_sets
    assert 0.0 <= shares["toy_bad_removed_share"] <= 1.0
    experiment = mlflow_client.get_experiment_by_name("data")
    runs = {r.data.tags["stage"]: r for r in mlflow_client.search_runs([experiment.experiment_id])}
    prepared, checked = runs["prepare-syncd"], runs["toy-filter-check"]
    assert prepared.info.status == checked.info.status == "FINISHED"
    assert prepared.data.tags["profile"] == "test" and prepared.data.tags["prefect.flow_run_id"]
    assert prepared.data.params["score.identity_scorer"] == "histogram"
    assert prepared.data.metrics["sets_read"] == 40 and prepared.data.metrics["scored"] == 40
    assert _artifacts(mlflow_client, prepared.info.run_id) == [
        "figures/histograms.png",
        "tables/report.json",
        "tables/train.json",
    ]
    assert checked.data.metrics["toy_bad_removed_share"] == shares["toy_bad_removed_share"]


def test_second_run_reuses_every_result(prefect_harness):
    first = prepare_syncd(profile="test")
    stamps = {p.name: p.stat().st_mtime_ns for p in Path(first["filtered_dir"]).iterdir()}
    world = toy_world(profile="test")
    world_stamp = (Path(world) / "world.json").stat().st_mtime_ns
    second = prepare_syncd(profile="test")
    assert second["filtered_dir"] == first["filtered_dir"] and second["run_id"] != first["run_id"]
    assert {p.name: p.stat().st_mtime_ns for p in Path(second["filtered_dir"]).iterdir()} == stamps
    assert (Path(toy_world(profile="test")) / "world.json").stat().st_mtime_ns == world_stamp


def test_prepare_dreambench_and_cli(prefect_harness):
    items = read_table(Path(prepare_dreambench(profile="test")) / "items.parquet")
    assert len(items) == 750 and items["subject"].nunique() == 30
    out = main(["prepare-syncd", "--profile", "test"])
    assert Path(out["train_json"]).is_file()


def test_prepare_syncd_scores_with_the_toy_zoo(prefect_harness, mlflow_client):
    """The toy profile's path on the test sizes: the reward zoo (test preset) is trained on the toy world,
    its DINOv2 and aesthetic head score the toy SynCD, the filter runs on their scores."""
    config = override(data_config("test"), {**ZOO_SCORING, "score.zoo_preset": "test"})
    out = prepare_syncd(config, profile="test")
    zoos = (Path(out["filtered_dir"]).parents[1] / "reward_zoo").iterdir()
    assert any((zoo / "dinov2" / "config.json").is_file() for zoo in zoos)
    run = mlflow_client.get_run(out["run_id"])
    assert run.data.params["score.weights"] == "toy_zoo" and run.data.metrics["scored"] == 40
    decisions = read_table(Path(out["filtered_dir"]) / "decisions.parquet")
    assert len(decisions) == 40 and decisions["mean_aesthetic"].between(0, 12).all()
