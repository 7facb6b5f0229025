"""End to end: the score-images flow under a Prefect test server, checked through the table and MLflow."""

import pandas as pd
import pytest

from cgrpo_core.rewards import ScoringConfig
from cgrpo_core.toy.tiny.rewards import build_tiny_reward_models
from flows.scoring import score_images_flow
from tests.cgrpo_core.rewards.scenes import make_scoring_folder

pytestmark = pytest.mark.slow


def test_score_images_flow_writes_parquet_and_logs(prefect_harness, mlflow_client, tmp_path):
    models = build_tiny_reward_models(tmp_path / "models")
    image_dir, manifest = make_scoring_folder(tmp_path / "data", n=3)
    config = ScoringConfig(
        name="flow-test",
        profile="test",
        metrics=("dino", "dino_seg", "clip_i", "clip_t", "hpsv3"),
        models=models,
    )
    table = score_images_flow(str(image_dir), str(manifest), config)
    frame = pd.read_parquet(table)
    assert len(frame) == 3 and frame[list(config.metrics)].notna().all().all()
    runs = mlflow_client.search_runs(
        [mlflow_client.get_experiment_by_name("scoring").experiment_id], "tags.profile = 'test'"
    )
    run = next(r for r in runs if r.info.run_name == "flow-test")
    assert run.info.status == "FINISHED" and run.data.tags["prefect.flow_run_id"]
    assert run.data.metrics["mean_hpsv3"] == pytest.approx(frame["hpsv3"].mean())
