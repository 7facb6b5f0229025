"""The model-free stand-in rewards behave as their definitions say."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cgrpo_core.data.scorers import color_histogram
from cgrpo_core.toy.zoo.policy.checks import derange
from cgrpo_core.toy.zoo.policy.data import _syncd_sets, edit_phrases
from cgrpo_core.toy.zoo.standins import color_identity, phrase_of, phrase_prompt_reward


def test_histogram_of_a_pure_colour_is_one_hot():
    # R = 1 sits at bin coordinate 4 * 1 - 0.5 clipped to 3, G = B = 0 at 0: all mass in bin (3, 0, 0).
    hist = color_histogram(np.tile([[1.0, 0.0, 0.0]], (10, 1)))
    assert hist[3 * 16] == pytest.approx(1.0) and hist.sum() == pytest.approx(1.0)


def test_color_identity_bounds():
    a, b = Image.new("RGB", (32, 32), (200, 30, 30)), Image.new("RGB", (32, 32), (30, 30, 200))
    out = color_identity([a, a], [a, b])
    assert out[0] == pytest.approx(1.0) and out[1] < 0.1


def test_phrase_of_prompts():
    edits = edit_phrases()
    assert phrase_of("a dog in the snow", edits) == "in the snow"
    assert phrase_of("a large red round dog with blue dots on top of a purple rug in a forest", edits) == (
        "on top of a purple rug in a forest"
    )
    assert phrase_of("a purple dog", edits) == "purple"
    with pytest.raises(ValueError, match="names no toy-world"):
        phrase_of("a dog on the moon", edits)


def test_prompt_reward_prefers_true_captions_on_its_own_data(small_world):
    reward = phrase_prompt_reward(small_world)
    sets = _syncd_sets(small_world)
    images = [Image.open(small_world / "syncd" / n) for names in sets["images"] for n in names]
    captions = [c for prompts in sets["prompts"] for c in prompts]
    true = reward(images, captions)
    shuffled = reward(images, derange(captions, np.random.default_rng(0)))
    assert true.mean() > shuffled.mean() + 0.05
