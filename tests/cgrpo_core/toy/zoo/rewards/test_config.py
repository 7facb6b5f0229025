"""Reward-zoo configs: validation messages, and what the content key depends on."""

import pytest

from cgrpo_core.config import experiment_config
from cgrpo_core.schema import config_hash
from cgrpo_core.toy.zoo.rewards.build import reward_zoo_key
from cgrpo_core.toy.zoo.rewards.config import DinoTrainConfig, HPSv3TrainConfig, ZooRewardsConfig
from cgrpo_core.toy.zoo.rewards.dino_training import DINO_INPUTS


def test_validation_messages():
    with pytest.raises(ValueError, match="image_size 50 must be a multiple of patch_size 8"):
        DinoTrainConfig(image_size=50)
    with pytest.raises(ValueError, match="hidden / heads must be a multiple of 16"):
        HPSv3TrainConfig(hidden=64, heads=8)
    with pytest.raises(ValueError, match="corpus.seed and checks.world_seed are both 7"):
        ZooRewardsConfig(corpus={"seed": 7}, checks={"world_seed": 7})
    assert set(ZooRewardsConfig().dinov2.inputs) <= set(DINO_INPUTS)


def test_key_follows_the_config_and_the_world_not_the_threads(small_world):
    cfg = experiment_config("test").toy.zoo.rewards
    key = reward_zoo_key(small_world, cfg)
    assert reward_zoo_key(small_world, cfg.model_copy(update={"threads": 1})) == key
    changed = cfg.model_copy(update={"clip": cfg.clip.model_copy(update={"steps": 41})})
    assert reward_zoo_key(small_world, changed) != key
    assert config_hash(cfg) != config_hash(ZooRewardsConfig())
    assert (
        experiment_config("toy").toy.zoo.rewards == ZooRewardsConfig()
    )  # the defaults are the toy profile's
