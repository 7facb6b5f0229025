"""LAION aesthetic: Linear head on L2-normalised CLIP image embeddings, read from LAION's file format."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import CLIPModel, CLIPProcessor

from cgrpo_core.rewards.aesthetic import aesthetic_scorer, load_aesthetic_head
from cgrpo_core.rewards.base import MissingCheckpointError, RewardBatch
from cgrpo_core.rewards.registry import load_reward
from tests.cgrpo_core.rewards.scenes import random_scene


def test_aesthetic_equals_direct_computation(reward_set, tiny_models):
    cfg = tiny_models.aesthetic
    images = [random_scene(np.random.default_rng(i))[0] for i in range(3)]
    scores = reward_set.get("aesthetic")(RewardBatch(images))
    model, processor = CLIPModel.from_pretrained(cfg.clip_dir), CLIPProcessor.from_pretrained(cfg.clip_dir)
    state = torch.load(
        Path(cfg.head_dir) / cfg.head_file, weights_only=True
    )  # {"weight": (1, D), "bias": (1,)}
    with torch.no_grad():
        emb = model.get_image_features(**processor(images=images, return_tensors="pt")).pooler_output
    expected = F.normalize(emb, dim=-1) @ state["weight"][0] + state["bias"][0]
    torch.testing.assert_close(scores, expected, atol=1e-5, rtol=0)
    assert len(set(scores.tolist())) == 3


def test_head_of_the_wrong_size_is_a_clear_error(tmp_path):
    torch.save(torch.nn.Linear(5, 1).state_dict(), tmp_path / "head.pth")
    with pytest.raises(ValueError, match="not a LAION aesthetic head for 768-d"):
        load_aesthetic_head(tmp_path / "head.pth", 768)


def test_missing_head_names_where_to_download_it(tiny_models, tmp_path):
    models = tiny_models.model_copy(
        update={"aesthetic": tiny_models.aesthetic.model_copy(update={"head_dir": str(tmp_path)})}
    )
    with pytest.raises(MissingCheckpointError, match="sa_0_4_vit_l_14_linear.pth") as err:
        load_reward("aesthetic", models)
    assert "github.com/LAION-AI/aesthetic-predictor" in str(err.value)


def test_aesthetic_scorer_has_the_syncd_scorer_signature(reward_set, tiny_models):
    images = [random_scene(np.random.default_rng(i))[0] for i in range(2)]
    scores = aesthetic_scorer(tiny_models)(images)
    assert isinstance(scores, np.ndarray) and scores.shape == (2,)
    np.testing.assert_allclose(scores, reward_set.get("aesthetic")(RewardBatch(images)).numpy(), atol=1e-6)
