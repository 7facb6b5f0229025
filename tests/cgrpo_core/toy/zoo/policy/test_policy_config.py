"""The zoo's generator config: the test profile's sizes, validation, registry names."""

from __future__ import annotations

import typing

import pytest

from cgrpo_core.config import PROFILES, experiment_config
from cgrpo_core.schema import config_hash, flatten, override
from cgrpo_core.toy.zoo.policy.base_policy import SIGMA_SAMPLERS
from cgrpo_core.toy.zoo.policy.config import SigmaSampling, ZooPolicyConfig


def test_the_test_profile_changes_only_step_counts_and_batches():
    toy = flatten(experiment_config("toy").toy.zoo.policy)
    test = flatten(experiment_config("test").toy.zoo.policy)
    changed = {k for k in toy if toy[k] != test[k]}
    prefix = "toy.zoo.policy."
    assert changed == {k.removeprefix(prefix) for k in PROFILES["test"] if k.startswith(prefix)}
    assert all(k.rsplit(".", 1)[1] in {"steps", "batch_size", "warmup_steps", "ema_decay"} for k in changed)
    assert experiment_config("toy").toy.zoo.policy == ZooPolicyConfig()


def test_seed_reaches_the_architecture_and_the_hash():
    cfg = override(ZooPolicyConfig(), {"seed": 3, "tiny.seed": 3})
    assert cfg.seed == cfg.tiny.seed == 3
    assert config_hash(cfg) != config_hash(ZooPolicyConfig())


def test_mismatched_seeds_are_an_error():
    with pytest.raises(ValueError, match="tiny.seed"):
        ZooPolicyConfig(seed=1)


def test_sigma_sampler_registry_matches_the_config_literal():
    assert set(SIGMA_SAMPLERS) == set(typing.get_args(SigmaSampling))


def test_toy_captions_fit_the_t5_length():
    # the longest toy caption has 25 T5 tokens (measured on the default world): 32 never truncates it
    assert ZooPolicyConfig().tiny.t5_max_length == 32
