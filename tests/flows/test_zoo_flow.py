"""End to end: the ``toy-zoo`` flow at the test preset under a Prefect test server, checked through MLflow
and the store; a second run reuses every result and logs nothing new."""

import json
from pathlib import Path

import pytest
from PIL import Image

import cgrpo_core.toy.zoo.check
import tasks.zoo
from cgrpo_core.config import experiment_config
from cgrpo_core.policy import load_policy
from cgrpo_core.rewards.registry import RewardSet
from cgrpo_core.toy.zoo.policy.build import base_policy_config
from cgrpo_core.toy.zoo.rewards.build import zoo_reward_models
from flows.zoo import main, toy_zoo

pytestmark = pytest.mark.slow
TEST = experiment_config("test")
MODELS = {"vae", "base_policy", "segmenter", "dinov2", "dino_v1", "clip", "aesthetic", "hpsv3"}


@pytest.fixture(scope="module")
def built(test_zoo):
    return test_zoo


def _runs(client):
    experiment = client.get_experiment_by_name("toy-zoo")
    return client.search_runs([experiment.experiment_id], max_results=1000)


def test_the_zoo_is_logged_one_child_run_per_model(built, mlflow_client):
    parent = mlflow_client.get_run(built["run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["profile"] == "test" and parent.data.tags["prefect.flow_run_id"]
    assert parent.data.tags["policy_zoo"] == Path(built["policy_zoo"]).name
    assert parent.data.tags["reward_zoo"] == Path(built["reward_zoo"]).name
    children = [r for r in _runs(mlflow_client) if r.data.tags.get("mlflow.parentRunId") == built["run_id"]]
    assert {r.data.tags["model"] for r in children} == MODELS and len(children) == len(MODELS)
    manifests = {
        "policy": json.loads((Path(built["policy_zoo"]) / "policy_zoo.json").read_text()),
        "rewards": json.loads((Path(built["reward_zoo"]) / "reward_zoo.json").read_text()),
    }
    for run in children:
        model, manifest = run.data.tags["model"], manifests[run.data.tags["zoo"]]
        assert run.info.status == "FINISHED" and run.data.tags["config_hash"] == manifest["key"]
        history = mlflow_client.get_metric_history(run.info.run_id, "train_loss")
        curve = manifest["curves"][model]
        assert [m.step for m in history] == [step for step, _ in curve]  # the whole curve, in order
        assert history[-1].value == pytest.approx(curve[-1][1])
        assert [a.path for a in mlflow_client.list_artifacts(run.info.run_id, "figures")] == [
            f"figures/{model}_curve.png"
        ]
    by_model = {r.data.tags["model"]: r for r in children}
    assert by_model["dinov2"].data.metrics["dino_seg_auc"] == manifests["rewards"]["checks"]["dino_seg_auc"]
    assert "clip_t_top1" in by_model["clip"].data.metrics and "dino_auc" in by_model["dino_v1"].data.metrics
    checks = json.loads((Path(built["checks"]) / "checks.json").read_text())
    base = by_model["base_policy"].data.metrics
    assert base["identity_margin"] == pytest.approx(checks["identity_margin"])
    assert base["prompt_margin/clip_t"] == pytest.approx(checks["prompt_margin/clip_t"])
    assert "prompt_margin/hpsv3" in base and "prompt_margin" not in base
    assert sorted(a.path for a in mlflow_client.list_artifacts(built["run_id"], "base_policy")) == [
        "base_policy/checks.json",
        "base_policy/grid.png",
    ]


def test_every_reward_check_is_logged_on_the_model_it_measures(built):
    rewards = json.loads((Path(built["reward_zoo"]) / "reward_zoo.json").read_text())
    owned = {
        name for model in MODELS for name in tasks.zoo._model_checks("rewards", model, rewards["checks"], {})
    }
    assert owned == set(rewards["checks"])


def test_the_grid_shows_reference_prompt_and_samples(built):
    check = TEST.toy.zoo.check
    grid = Image.open(Path(built["checks"]) / "grid.png")
    tile = grid.height // check.grid_rows
    assert grid.size == (tile * (1 + 2 + check.samples_per_item), tile * check.grid_rows)


def test_the_zoo_loads_through_the_real_loaders(built):
    policy_cfg = base_policy_config(built["policy_zoo"])
    assert policy_cfg.base_model == f"toy-zoo/{Path(built['policy_zoo']).name}/flux"  # not FLUX.1-dev
    policy = load_policy(policy_cfg)
    assert policy.transformer.config.num_layers == TEST.toy.zoo.policy.tiny.num_layers
    rewards = RewardSet(zoo_reward_models(built["reward_zoo"]))
    assert rewards.get("dino_seg").name == "dino_seg" and rewards.get("hpsv3").name == "hpsv3"


def test_a_second_run_trains_nothing_and_logs_nothing(built, mlflow_client, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise AssertionError("a reused zoo must not be trained or checked again")

    for name in ("train_reward_zoo", "train_policy_zoo"):
        monkeypatch.setattr(tasks.zoo, name, refuse)
    monkeypatch.setattr(cgrpo_core.toy.zoo.check, "check_base_policy", refuse)  # imported where it runs
    before = {r.info.run_id for r in _runs(mlflow_client)}
    again = main(["--profile", "test"])
    assert again == built and capsys.readouterr().out.strip().splitlines()[-1] == built["checks"]
    assert {r.info.run_id for r in _runs(mlflow_client)} == before


def test_the_check_needs_the_world_resolution(built):
    from cgrpo_core.toy.zoo.check import check_base_policy

    toy_sampler = experiment_config("toy").sampler
    with pytest.raises(ValueError, match="resolution = 32"):
        check_base_policy(
            built["policy_zoo"], built["reward_zoo"], built["toy_world"], TEST.toy.zoo.check, toy_sampler
        )


def test_the_paper_profile_has_no_zoo(prefect_harness):
    with pytest.raises(ValueError, match="no toy zoo"):
        toy_zoo(experiment_config("paper"))


def test_with_toy_weights_points_every_section_at_the_zoo(built):
    from cgrpo_core.config import training_key
    from cgrpo_core.toy.zoo.weights import with_toy_weights

    resolved = with_toy_weights(TEST, built["policy_zoo"], built["reward_zoo"])
    assert resolved.weights == "configured" and resolved.policy.lora_rank == TEST.policy.lora_rank
    assert resolved.policy.model_folder == str(Path(built["policy_zoo"]).resolve())
    reward_key = Path(built["reward_zoo"]).name
    for section in (
        resolved.rewards.models.dino_seg,
        resolved.evaluation.metrics.dino,
        resolved.data.score.identity_model,
    ):
        assert section.model_id.startswith(f"toy-zoo/{reward_key}/")
    assert training_key(resolved, "list") != training_key(
        resolved.model_copy(
            update={
                "policy": resolved.policy.model_copy(update={"model_folder": str(Path(built["reward_zoo"]))})
            }
        ),
        "list",
    )
    with pytest.raises(ValueError, match="toy_zoo"):
        with_toy_weights(resolved, built["policy_zoo"], built["reward_zoo"])
