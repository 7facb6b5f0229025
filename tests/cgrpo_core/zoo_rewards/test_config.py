"""Reward-zoo configs: presets, validation messages, and what the content key depends on."""

import pytest

from cgrpo_core.config import config_hash, flatten
from cgrpo_core.data.config import ZooPreset
from cgrpo_core.zoo.dino import DINO_INPUTS
from cgrpo_core.zoo.reward_config import (
    ZOO_REWARDS_PRESETS,
    DinoTrainConfig,
    HPSv3TrainConfig,
    ZooRewardsConfig,
    zoo_rewards_config,
)
from cgrpo_core.zoo.rewards_zoo import reward_zoo_key


def test_presets_change_only_their_listed_fields():
    base = flatten(ZooRewardsConfig())
    for preset, changes in ZOO_REWARDS_PRESETS.items():
        cfg = flatten(zoo_rewards_config(preset))
        assert {k for k in base if base[k] != cfg[k]} == {k for k, v in changes.items() if base[k] != v}
    assert zoo_rewards_config("toy") == ZooRewardsConfig()
    assert set(ZooPreset.__args__) == set(ZOO_REWARDS_PRESETS)  # the data area names the presets
    with pytest.raises(ValueError, match="unknown reward-zoo preset 'huge'"):
        zoo_rewards_config("huge")


def test_validation_messages():
    with pytest.raises(ValueError, match="image_size 50 must be a multiple of patch_size 8"):
        DinoTrainConfig(image_size=50)
    with pytest.raises(ValueError, match="hidden / heads must be a multiple of 16"):
        HPSv3TrainConfig(hidden=64, heads=8)
    with pytest.raises(ValueError, match="corpus.seed and checks.world_seed are both 7"):
        ZooRewardsConfig(corpus={"seed": 7}, checks={"world_seed": 7})
    assert set(ZooRewardsConfig().dinov2.inputs) <= set(DINO_INPUTS)


def test_key_follows_the_config_and_the_world_not_the_threads(small_world):
    cfg = zoo_rewards_config("test")
    key = reward_zoo_key(small_world, cfg)
    assert reward_zoo_key(small_world, cfg.model_copy(update={"threads": 1})) == key
    changed = cfg.model_copy(update={"clip": cfg.clip.model_copy(update={"steps": 41})})
    assert reward_zoo_key(small_world, changed) != key
    assert config_hash(cfg) != config_hash(ZooRewardsConfig())
