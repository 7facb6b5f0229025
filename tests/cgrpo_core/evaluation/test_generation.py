"""Benchmark generation: one seeded noise per image, so an item's images do not depend on its batch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from cgrpo_core.data.dreambench import bench_files
from cgrpo_core.evaluation.generation import (
    BenchItem,
    benchmark_items,
    generate_samples,
    image_noise,
    image_seed,
)
from cgrpo_core.policy import PolicyConfig, encode_condition, load_policy
from cgrpo_core.toy.tiny.policy import build_tiny_checkpoint
from tests.cgrpo_core.policy.helpers import TEST_SAMPLER, checkerboard, solid
from tests.conftest import SHARED


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    folder = tmp_path_factory.mktemp("refs")
    checkerboard().save(folder / "a.png")
    solid((200, 40, 40)).save(folder / "b.png")
    return [
        BenchItem("dog_a", "dog", True, 0, "recontextualization", "a dog in the snow", folder / "a.png"),
        BenchItem("can_b", "can", False, 20, "property", "a purple can", folder / "b.png"),
        BenchItem("can_b", "can", False, 1, "recontextualization", "a can on the beach", folder / "b.png"),
    ]


def _pixels(images):
    return np.stack([np.asarray(im, dtype=np.int16) for im in images])


def test_an_items_images_do_not_depend_on_its_batch(policy, items):
    together = generate_samples(policy, items, TEST_SAMPLER, samples_per_item=2, seed=0)
    alone = generate_samples(policy, items[2:], TEST_SAMPLER, samples_per_item=2, seed=0)
    reordered = generate_samples(policy, items[::-1], TEST_SAMPLER, samples_per_item=2, seed=0)
    # batch size changes float summation order only: at most one grey level
    assert np.abs(_pixels(together[2]) - _pixels(alone[0])).max() <= 1
    assert np.abs(_pixels(together[0]) - _pixels(reordered[2])).max() <= 1
    assert np.abs(_pixels(together[0]) - _pixels(together[1])).mean() > 2  # items do differ
    other_seed = generate_samples(policy, items[2:], TEST_SAMPLER, samples_per_item=2, seed=1)
    assert np.abs(_pixels(other_seed[0]) - _pixels(alone[0])).mean() > 2


def test_paired_noise_is_the_same_for_every_model(policy, items, tmp_path):
    other = load_policy(
        PolicyConfig(
            model_folder=str(build_tiny_checkpoint(tmp_path / "other", corpus=["another corpus"])),
            uno_lora=None,
            dtype="float32",
            lora_rank=0,
        )
    )
    item = items[1]
    for model in (policy, other):
        cond = encode_condition(model, item.prompt, item.reference, TEST_SAMPLER.resolution)
        noise = image_noise(model, cond, item, 4, seed=3)
        if model is policy:
            first = noise
    assert torch.equal(first, noise)  # the same noise tensor, not only the same seed numbers
    assert not torch.equal(noise[0], noise[1])  # and a different one per image of the item


def test_image_seeds_are_stable_and_distinct(items):
    seeds = {image_seed(0, it, k) for it in items for k in range(4)}
    assert len(seeds) == 12 and all(0 <= s < 2**63 for s in seeds)
    assert image_seed(0, items[0], 0) == image_seed(0, dataclasses.replace(items[0], prompt_index=7), 0)
    # hand value: sha256("0\0dog_a\0a dog in the snow\00") as a 63-bit integer
    import hashlib

    digest = hashlib.sha256(b"0\x00dog_a\x00a dog in the snow\x000").digest()
    assert image_seed(0, items[0], 0) == int.from_bytes(digest[:8], "big") >> 1


def test_benchmark_items_keep_evenly_spaced_subjects_with_all_their_chosen_prompts():
    root = SHARED / "dreambench" / "dataset"
    if not root.is_dir():
        pytest.skip(f"DreamBench not found at {root}")
    bench = bench_files(root, None, None)
    every = benchmark_items(*bench)
    order = list(dict.fromkeys(item.subject for item in every))
    assert len(every) == 750 and len(order) == 30
    kept = benchmark_items(*bench, 2, 6)
    # linspace(0, 29, 6) = 0, 5.8, 11.6, 17.4, 23.2, 29 -> positions 0, 6, 12, 17, 23, 29
    chosen = [order[i] for i in (0, 6, 12, 17, 23, 29)]
    assert [(i.subject, i.prompt_index) for i in kept] == [
        (i.subject, i.prompt_index) for i in every if i.subject in chosen and i.prompt_index in (0, 24)
    ]
    assert list(dict.fromkeys(i.subject for i in kept)) == chosen
    assert benchmark_items(*bench, 2, 30) == benchmark_items(*bench, 2) == benchmark_items(*bench, 2, 99)
