"""Scoring tasks through ``.fn``: an atomic, content-addressed Parquet table, reused; an MLflow run."""

from pathlib import Path

import pandas as pd
import pytest

from cgrpo_core.rewards import RewardBatch, RewardSet, ScoringConfig
from cgrpo_core.toy.tiny.rewards import build_tiny_reward_models
from tasks.scoring import log_scores, score_images, scoring_key
from tests.cgrpo_core.rewards.scenes import make_scoring_folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("scoring_task")
    models = build_tiny_reward_models(root / "models")
    image_dir, manifest = make_scoring_folder(root / "data")
    config = ScoringConfig(
        name="scoring-test", profile="test", metrics=("dino", "clip_t", "aesthetic"), models=models
    )
    return config, str(image_dir), str(manifest)


def test_score_images_writes_a_table_once(setup):
    config, image_dir, manifest = setup
    key = scoring_key.fn(config, image_dir, manifest)
    table = Path(score_images.fn(config, image_dir, manifest, key))
    assert table.parent.name == key and table.name == "scores.parquet"
    assert (table.parent / "_COMPLETE").is_file()
    assert not list(table.parent.parent.glob(".*building"))  # no staging folder left behind
    frame = pd.read_parquet(table)
    assert list(frame.columns) == ["image", "prompt", "subject", "references", "dino", "clip_t", "aesthetic"]
    images = [Path(image_dir) / name for name in frame["image"]]
    expected = RewardSet(config.models).get("clip_t")(RewardBatch(images, prompts=list(frame["prompt"])))
    assert frame["clip_t"].tolist() == pytest.approx(expected.tolist(), abs=1e-6)
    mtime = table.stat().st_mtime_ns
    assert score_images.fn(config, image_dir, manifest, key) == str(table)
    assert table.stat().st_mtime_ns == mtime  # reused, not recomputed


def test_key_changes_with_metrics_and_images_not_with_labels(setup, tmp_path):
    config, image_dir, manifest = setup
    key = scoring_key.fn(config, image_dir, manifest)
    assert (
        scoring_key.fn(config.model_copy(update={"name": "other", "chunk_size": 1}), image_dir, manifest)
        == key
    )
    assert scoring_key.fn(config.model_copy(update={"metrics": ("dino",)}), image_dir, manifest) != key
    # settings of a metric that is not scored do not matter; those of a scored one do
    hps = config.models.hpsv3.model_copy(update={"image_pixels": 8 * 28 * 28})
    dino = config.models.dino.model_copy(update={"crop_fraction": 1.0})
    assert (
        scoring_key.fn(
            config.model_copy(update={"models": config.models.model_copy(update={"hpsv3": hps})}),
            image_dir,
            manifest,
        )
        == key
    )
    assert (
        scoring_key.fn(
            config.model_copy(update={"models": config.models.model_copy(update={"dino": dino})}),
            image_dir,
            manifest,
        )
        != key
    )
    other_dir, other_manifest = make_scoring_folder(tmp_path, seed=1)
    assert scoring_key.fn(config, str(other_dir), str(other_manifest)) != key


def test_log_scores_records_means_and_the_table(setup, mlflow_client, monkeypatch):
    monkeypatch.setenv("CGRPO_VLM_API_KEY", "sk-never-logged")
    config, image_dir, manifest = setup
    key = scoring_key.fn(config, image_dir, manifest)
    table = score_images.fn(config, image_dir, manifest, key)
    run = mlflow_client.get_run(log_scores.fn(config, key, table))
    frame = pd.read_parquet(table)
    assert run.info.status == "FINISHED"
    assert run.data.tags["config_hash"] == key and run.data.tags["metrics"] == "dino,clip_t,aesthetic"
    assert run.data.metrics["mean_dino"] == pytest.approx(frame["dino"].mean())
    assert run.data.params["models.dino.family"] == "dino_v1"
    assert run.data.params["models.vlm.api_key_env"] == "CGRPO_VLM_API_KEY"  # the variable's name only
    assert "sk-never-logged" not in str(run.data.params) + str(run.data.tags)
    assert [a.path for a in mlflow_client.list_artifacts(run.info.run_id, "tables")] == [
        "tables/scores.parquet"
    ]


def test_judge_scores_are_keyed_by_the_judge_model_and_endpoint(setup, monkeypatch):
    """The judge's model and endpoint may come from the environment: they are part of the key (a table
    scored by one judge is never reused for another), the API key is not."""
    config, image_dir, manifest = setup
    judged = config.model_copy(update={"metrics": ("vlm_judge_prompt",)})
    monkeypatch.setenv("CGRPO_VLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("CGRPO_VLM_MODEL", "judge-a")
    monkeypatch.setenv("CGRPO_VLM_API_KEY", "sk-one")
    key_a = scoring_key.fn(judged, image_dir, manifest)
    monkeypatch.setenv("CGRPO_VLM_API_KEY", "sk-two")
    assert scoring_key.fn(judged, image_dir, manifest) == key_a
    monkeypatch.setenv("CGRPO_VLM_MODEL", "judge-b")
    assert scoring_key.fn(judged, image_dir, manifest) != key_a
    monkeypatch.setenv("CGRPO_VLM_MODEL", "judge-a")
    monkeypatch.setenv("CGRPO_VLM_BASE_URL", "http://127.0.0.1:10/v1")
    assert scoring_key.fn(judged, image_dir, manifest) != key_a
    assert scoring_key.fn(config, image_dir, manifest) == scoring_key.fn(config, image_dir, manifest)
