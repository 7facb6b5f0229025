"""Session fixtures of the reward tests: every tiny checkpoint built once, a CLIP trained to read colours."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import CLIPModel, CLIPProcessor

from cgrpo_core.rewards.config import EmbeddingRewardConfig
from cgrpo_core.rewards.registry import RewardSet
from cgrpo_core.toy.tiny.rewards import build_tiny_clip, build_tiny_reward_models
from tests.cgrpo_core.rewards.scenes import COLOURS, shape_image

CAPTIONS = {c: f"a photo of a {c} square" for c in COLOURS}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """RewardModels reading tiny checkpoints of every real class (Segformer segmenter)."""
    return build_tiny_reward_models(tmp_path_factory.mktemp("tiny_rewards"), corpus=list(CAPTIONS.values()))


@pytest.fixture(scope="session")
def reward_set(tiny_models):
    return RewardSet(tiny_models)


@pytest.fixture(scope="session")
def colour_clip(tmp_path_factory):
    """A tiny CLIP trained contrastively (one image per colour per step, 150 steps, about a second) so that
    its image and caption embeddings agree on the square's colour; returns an EmbeddingRewardConfig."""
    folder = build_tiny_clip(tmp_path_factory.mktemp("colour_clip"), corpus=list(CAPTIONS.values()))
    model, processor = CLIPModel.from_pretrained(folder), CLIPProcessor.from_pretrained(folder)
    names = list(CAPTIONS)
    text = processor.tokenizer([CAPTIONS[c] for c in names], padding=True, return_tensors="pt")
    rng = np.random.default_rng(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for _ in range(150):
            order = rng.permutation(len(names))
            pixels = processor.image_processor(
                images=[shape_image(names[i], rng) for i in order], return_tensors="pt"
            )["pixel_values"]
            out = model(
                input_ids=text["input_ids"][order],
                attention_mask=text["attention_mask"][order],
                pixel_values=pixels,
                return_loss=True,
            )
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
    model.save_pretrained(folder)
    return EmbeddingRewardConfig(family="clip", model_id="tiny/colour-clip", local_dir=str(folder))
