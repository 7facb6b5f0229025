"""CLIP-T: equals a direct computation; ranks a matching caption first for a model that reads colours."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import CLIPModel, CLIPProcessor

from cgrpo_core.rewards.base import RewardBatch
from cgrpo_core.rewards.config import RewardModels
from cgrpo_core.rewards.registry import load_reward
from tests.cgrpo_core.rewards.conftest import CAPTIONS
from tests.cgrpo_core.rewards.scenes import shape_image


def test_clip_t_equals_direct_computation(colour_clip):
    reward = load_reward("clip_t", RewardModels(clip_t=colour_clip))
    rng = np.random.default_rng(5)
    images = [shape_image(c, rng) for c in ("red", "blue", "red")]
    prompts = [CAPTIONS["red"], "a dog on the beach " * 30, CAPTIONS["red"]]  # the second is truncated to 77
    scores = reward(RewardBatch(images, prompts=prompts))
    model, processor = (
        CLIPModel.from_pretrained(colour_clip.local_dir),
        CLIPProcessor.from_pretrained(colour_clip.local_dir),
    )
    with torch.no_grad():
        image_emb = model.get_image_features(**processor(images=images, return_tensors="pt")).pooler_output
        text = [processor.tokenizer(p, truncation=True, max_length=77, return_tensors="pt") for p in prompts]
        text_emb = torch.cat([model.get_text_features(**t).pooler_output for t in text])
    torch.testing.assert_close(scores, F.cosine_similarity(image_emb, text_emb, dim=-1), atol=1e-5, rtol=0)


def test_clip_t_ranks_the_matching_caption_first(colour_clip):
    """Held-out squares of each colour: CLIP-T(image, own caption) > CLIP-T(image, any other colour's)."""
    reward = load_reward("clip_t", RewardModels(clip_t=colour_clip))
    rng = np.random.default_rng(123)
    colours = list(CAPTIONS)
    for colour in colours:
        images = [shape_image(colour, rng) for _ in range(5)]
        by_caption = {
            other: reward(RewardBatch(images, prompts=[CAPTIONS[other]] * 5)) for other in colours
        }  # {caption colour: (5,)}
        for other in colours:
            if other != colour:
                assert (by_caption[colour] > by_caption[other]).all(), (colour, other)


def test_clip_t_needs_prompts(colour_clip):
    reward = load_reward("clip_t", RewardModels(clip_t=colour_clip))
    with pytest.raises(ValueError, match="'clip_t' needs prompts"):
        reward(RewardBatch([shape_image("red", np.random.default_rng(0))]))
