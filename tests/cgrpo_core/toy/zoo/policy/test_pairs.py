"""Training data from the toy SynCD: every image for the VAE, (reference, target, caption) pairs."""

from __future__ import annotations

import json

import torch

from cgrpo_core.toy.zoo.policy.data import (
    edit_phrases,
    load_pixels,
    training_images,
    training_pairs,
    world_resolution,
)


def _sets(world):
    return {
        p.parent.name: json.loads(p.read_text())[0] for p in sorted((world / "syncd").glob("*/metadata.json"))
    }


def test_images_are_every_syncd_view_and_no_toybench(small_world):
    images = training_images(small_world)
    assert len(images) == sum(len(item["filenames"]) for item in _sets(small_world).values())
    assert all("syncd" in p.parts and "toybench" not in p.parts for p in images)


def test_pairs_are_ordered_view_pairs_without_edited_references(small_world):
    edited = edit_phrases()
    expected = 0
    for item in _sets(small_world).values():
        n = len(item["filenames"])
        references = sum(caption not in edited for caption in item["prompts"])
        expected += references * (n - 1)  # each usable reference pairs with every other view
    assert any(c in edited for item in _sets(small_world).values() for c in item["prompts"])  # exercised
    pairs = training_pairs(small_world)
    assert len(pairs) == expected
    captions = {}
    for set_id, item in _sets(small_world).items():
        for name, caption in zip(item["filenames"], item["prompts"], strict=True):
            captions[f"{set_id}/{name}"] = caption
    for pair in pairs:
        assert pair.reference != pair.target and pair.reference.parent == pair.target.parent
        assert pair.caption == captions[f"{pair.target.parent.name}/{pair.target.name}"]
        assert captions[f"{pair.reference.parent.name}/{pair.reference.name}"] not in edited


def test_edit_phrases_name_what_the_prompt_asks():
    phrases = edit_phrases()
    assert phrases["a purple dog"] == "purple"
    assert phrases["a cube shaped stuffed animal"] == "cube shaped"
    assert phrases["a cat wearing a red hat"] == "wearing a red hat"
    assert "a dog in the snow" not in phrases


def test_load_pixels_range_and_shape(small_world):
    pixels = load_pixels(training_images(small_world)[:3], world_resolution(small_world))
    assert pixels.shape == (3, 3, 32, 32)
    assert pixels.min() >= -1 and pixels.max() <= 1
    assert world_resolution(small_world) == 32
    assert torch.isfinite(pixels).all()
