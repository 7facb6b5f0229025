"""The zoo's generator config: presets, validation, registry names."""

from __future__ import annotations

import typing

import pytest

from cgrpo_core.config import config_hash, flatten
from cgrpo_core.zoo.base_policy import SIGMA_SAMPLERS
from cgrpo_core.zoo.policy_config import (
    ZOO_POLICY_PROFILE_OVERRIDES,
    SigmaSampling,
    ZooPolicyConfig,
    zoo_policy_config,
)


def test_presets_differ_only_in_step_counts_and_batches():
    toy, test = flatten(zoo_policy_config("toy")), flatten(zoo_policy_config("test"))
    changed = {k for k in toy if toy[k] != test[k]}
    assert changed == set(ZOO_POLICY_PROFILE_OVERRIDES["test"])
    assert all(k.rsplit(".", 1)[1] in {"steps", "batch_size", "warmup_steps", "ema_decay"} for k in changed)


def test_seed_reaches_the_architecture_and_the_hash():
    cfg = zoo_policy_config("toy", seed=3)
    assert cfg.seed == cfg.tiny.seed == 3
    assert config_hash(cfg) != config_hash(zoo_policy_config("toy", seed=0))


def test_mismatched_seeds_are_an_error():
    with pytest.raises(ValueError, match="tiny.seed"):
        ZooPolicyConfig(seed=1)


def test_unknown_profile_lists_the_presets():
    with pytest.raises(ValueError, match=r"\['test', 'toy'\]"):
        zoo_policy_config("paper")


def test_sigma_sampler_registry_matches_the_config_literal():
    assert set(SIGMA_SAMPLERS) == set(typing.get_args(SigmaSampling))


def test_toy_captions_fit_the_t5_length():
    # the longest toy caption has 25 T5 tokens (measured on the default world): 32 never truncates it
    assert zoo_policy_config("toy").tiny.t5_max_length == 32
