"""The above-chance checks on constructed cases with known answers, and on the trained test policy."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from cgrpo_core.evaluation.generation import BenchItem
from cgrpo_core.policy import PolicyConfig, load_policy
from cgrpo_core.toy.zoo.policy.checks import (
    check_rewards,
    derange,
    ground_truth_renders,
    policy_checks,
    toybench_items,
)
from cgrpo_core.toy.zoo.standins import color_identity, phrase_prompt_reward
from tests.cgrpo_core.toy.zoo.policy.test_base_policy import TEST_SAMPLER

SUBJECTS = {"red_thing": (255, 0, 0), "green_thing": (0, 255, 0), "blue_thing": (0, 0, 255)}
PROMPTS = {
    "paint it cyan": (0, 255, 255),
    "paint it magenta": (255, 0, 255),
    "paint it yellow": (255, 255, 0),
}


def solid(color, size=32):
    return Image.new("RGB", (size, size), color)


def prompt_is_colour(images, prompts):
    """1 where the image's mean colour is the prompt's colour, else 0."""
    means = [tuple(np.asarray(im).reshape(-1, 3).mean(0).round().astype(int)) for im in images]
    return [float(m == PROMPTS[p]) for m, p in zip(means, prompts, strict=True)]


@pytest.fixture
def items(tmp_path):
    out = []
    for subject, color in SUBJECTS.items():
        path = tmp_path / f"{subject}.png"
        solid(color).save(path)
        for k, (prompt, kind) in enumerate(
            zip(PROMPTS, ("property", "recontextualization", "property"), strict=True)
        ):
            out.append(BenchItem(subject, "thing", False, k, kind, prompt, path))
    return out


def test_copying_the_reference_scores_max_identity_and_chance_prompt(items):
    # color_identity of a solid colour is a one-hot histogram: 1 with itself, 0 with another pure colour.
    samples = [[solid(SUBJECTS[it.subject])] * 2 for it in items]
    out = check_rewards(samples, items, color_identity, prompt_is_colour)
    assert out["identity_own"] == 1.0 and out["identity_other"] == 0.0
    assert out["identity_margin"] == 1.0 and out["identity_margin_se"] == 0.0
    assert out["prompt_true"] == out["prompt_shuffled"] == out["prompt_margin"] == 0.0


def test_prompt_perfect_samples_lose_to_shuffled_prompts_and_have_no_identity(items):
    samples = [[solid(PROMPTS[it.prompt])] * 3 for it in items]
    out = check_rewards(samples, items, color_identity, prompt_is_colour)
    assert out["prompt_true"] == 1.0 and out["prompt_shuffled"] == 0.0 and out["prompt_margin"] == 1.0
    assert out["identity_own"] == out["identity_other"] == out["identity_margin"] == 0.0
    assert out["prompt_true/property"] == out["prompt_true/recontextualization"] == 1.0


def test_half_right_samples_give_half_margins(items):
    # Each item: one copy of the reference and one prompt-perfect image -> own 1/2, true 1/2, chance 0.
    samples = [[solid(SUBJECTS[it.subject]), solid(PROMPTS[it.prompt])] for it in items]
    out = check_rewards(samples, items, color_identity, prompt_is_colour)
    assert out["identity_margin"] == pytest.approx(0.5) and out["prompt_margin"] == pytest.approx(0.5)


def test_reward_with_wrong_shape_is_an_error(items):
    with pytest.raises(ValueError, match="expected"):
        check_rewards([[solid((0, 0, 0))]] * len(items), items, lambda a, b: [0.0], prompt_is_colour)


def test_derange_moves_every_text_and_keeps_the_multiset():
    texts = ["a", "a", "a", "b", "b", "c"]
    for seed in range(20):
        out = derange(texts, np.random.default_rng(seed))
        assert sorted(out) == sorted(texts)
        assert all(x != y for x, y in zip(out, texts, strict=True))
    with pytest.raises(ValueError, match="two distinct"):
        derange(["a", "a"], np.random.default_rng(0))
    with pytest.raises(ValueError, match="dominates"):
        derange(["a", "a", "a", "b"], np.random.default_rng(0))


def test_ground_truth_renders_the_prompted_subject(small_world):
    items = toybench_items(small_world, prompts_per_subject=2)
    renders = ground_truth_renders(small_world, items[:4], samples_per_item=3)
    assert [len(r) for r in renders] == [3] * 4 and renders[0][0].size == (32, 32)
    with pytest.raises(ValueError, match="another toy world"):
        ground_truth_renders(small_world, [dataclasses.replace(items[0], prompt="a dog in space")])


def test_policy_checks_on_the_trained_test_policy(trained, small_world):
    folder, _, _ = trained
    policy = load_policy(PolicyConfig(model_folder=str(folder), uno_lora=None, dtype="float32", lora_rank=0))
    items = toybench_items(small_world, prompts_per_subject=2)[:12]
    out = policy_checks(
        policy, items, color_identity, phrase_prompt_reward(small_world), TEST_SAMPLER, small_world, 2
    )
    assert out["copy/identity_own"] == pytest.approx(1.0)  # the reference compared with itself
    assert out["identity_relative"] == out["identity_margin"] / out["truth/identity_margin"]
    assert out["truth/identity_margin"] > 0  # the world's own renders are above chance
    assert all(np.isfinite(v) for v in out.values())
