"""The registry and the reward interface: names, loading once, missing checkpoints, input checks."""

import numpy as np
import pytest
import torch

from cgrpo_core.rewards.base import MissingCheckpointError, RewardBatch
from cgrpo_core.rewards.config import dreambench_metric_models, paper_reward_models
from cgrpo_core.rewards.registry import REWARDS, RewardSet, load_reward
from tests.cgrpo_core.rewards.scenes import random_scene

MODEL_REWARDS = ["dino", "dino_seg", "clip_i", "clip_t", "hpsv3", "aesthetic"]


def _batch(n=3, seed=0):
    rng = np.random.default_rng(seed)
    images = [random_scene(rng)[0] for _ in range(n + 1)]
    return RewardBatch(images[:n], references=[images[n]] * n, prompts=["a toy"] * n, subjects=["toy"] * n)


@pytest.mark.parametrize("name", MODEL_REWARDS)
def test_every_model_reward_scores_one_finite_float_per_image(reward_set, name):
    scores = reward_set.get(name)(_batch())
    assert scores.shape == (3,) and scores.dtype == torch.float32 and torch.isfinite(scores).all()


def test_unknown_name_lists_the_valid_ones(tiny_models):
    with pytest.raises(ValueError, match="unknown reward 'dinov3'.*'clip_i'"):
        load_reward("dinov3", tiny_models)


def test_reward_set_loads_each_model_once(tiny_models):
    rewards = RewardSet(tiny_models)
    assert rewards.get("clip_t") is rewards.get("clip_t")
    assert rewards.get("clip_i").encoder.model is rewards.get("clip_t").encoder.model  # one CLIP for both
    assert rewards.needs(["clip_t", "dino_seg"]) == {"prompts", "references"}
    scores = rewards.score(["clip_i", "clip_t"], _batch())
    assert set(scores) == {"clip_i", "clip_t"}


@pytest.mark.parametrize(
    ("name", "download"),
    [
        ("dino", "hf download facebook/dino-vits16"),
        ("dino_seg", "hf download facebook/dinov2-large"),
        ("clip_i", "hf download openai/clip-vit-base-patch32"),
        ("clip_t", "hf download openai/clip-vit-base-patch32"),
        ("hpsv3", "hf download MizzenAI/HPSv3 HPSv3.safetensors"),
        ("aesthetic", "hf download openai/clip-vit-large-patch14"),
        ("aesthetic_head", "LAION-AI/aesthetic-predictor"),
    ],
)
def test_missing_checkpoint_names_what_to_download(name, download, tiny_models):
    """Offline, with nothing in the hub cache: an error naming the checkpoint, never a silent fallback."""
    models = dreambench_metric_models() if name in ("dino", "clip_i", "clip_t") else paper_reward_models()
    if name == "aesthetic_head":  # the CLIP is there, the head is not
        name = "aesthetic"
        models = tiny_models.model_copy(
            update={"aesthetic": tiny_models.aesthetic.model_copy(update={"head_dir": None})}
        )
    with pytest.raises(MissingCheckpointError, match=download):
        load_reward(name, models)


def test_missing_local_folder_names_the_folder(tmp_path):
    models = paper_reward_models()
    models = models.model_copy(
        update={"dino": models.dino.model_copy(update={"local_dir": str(tmp_path / "x")})}
    )
    with pytest.raises(MissingCheckpointError, match=r"no dinov2 model checkpoint in .*x \(config.json"):
        load_reward("dino", models)


def test_a_missing_toy_model_says_to_build_the_zoo_not_to_download(tmp_path):
    from cgrpo_core.rewards.config import SegmenterConfig
    from cgrpo_core.rewards.segmentation import load_segmenter

    cfg = SegmenterConfig(kind="segformer", segformer_dir=str(tmp_path / "absent"))
    with pytest.raises(MissingCheckpointError, match=r"toy-zoo model.*python -m flows.zoo") as err:
        load_segmenter(cfg)
    assert "hf download" not in str(err.value)


def test_reward_batch_checks_its_inputs():
    images = _batch(2).images
    with pytest.raises(ValueError, match="prompts has 1 entries for 2 images"):
        RewardBatch(images, prompts=["a"])
    with pytest.raises(ValueError, match="at least one image"):
        RewardBatch([])
    with pytest.raises(ValueError, match="at least one reference"):
        RewardBatch(images, references=[[], []])
    with pytest.raises(ValueError, match="2 reference masks for 1 references"):
        RewardBatch(images[:1], references=[images[1]], reference_masks=[[None, None]])
    with pytest.raises(FileNotFoundError, match="nope.png"):
        RewardBatch(["nope.png"])
    batch = RewardBatch(images, references=[images[0], [images[0], images[1]]])
    assert [len(r) for r in batch.references] == [1, 2]


def test_paths_are_loaded_as_rgb(tmp_path, reward_set):
    images = _batch(2).images
    images[0].convert("L").save(tmp_path / "a.png")
    images[1].save(tmp_path / "b.png")
    batch = RewardBatch([tmp_path / "a.png", str(tmp_path / "b.png")], references=[tmp_path / "b.png"] * 2)
    assert all(im.mode == "RGB" for im in batch.images)
    assert reward_set.get("clip_i")(batch)[1].item() == pytest.approx(1.0, abs=1e-6)


def test_registry_holds_every_documented_name():
    assert sorted(REWARDS) == sorted(
        ["dino", "dino_seg", "clip_i", "clip_t", "hpsv3", "aesthetic", "vlm_judge_id", "vlm_judge_prompt"]
    )
