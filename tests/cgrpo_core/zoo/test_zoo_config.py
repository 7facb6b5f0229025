"""The whole zoo's config: presets are the two halves' presets plus the check's sizes."""

import pytest

from cgrpo_core.config import PROFILE_OVERRIDES
from cgrpo_core.data.config import data_config
from cgrpo_core.zoo.config import ZooConfig, zoo_config
from cgrpo_core.zoo.policy_config import zoo_policy_config
from cgrpo_core.zoo.reward_config import zoo_rewards_config


@pytest.mark.parametrize("preset", ["toy", "test"])
def test_presets_are_the_halves_presets_with_the_profiles_sampler(preset):
    cfg = zoo_config(preset)
    assert cfg.policy == zoo_policy_config(preset) and cfg.rewards == zoo_rewards_config(preset)
    sampler = {k.removeprefix("sampler."): v for k, v in PROFILE_OVERRIDES[preset].items() if "sampler." in k}
    assert cfg.check.sampler.model_dump() | sampler == cfg.check.sampler.model_dump()
    # the check samples at the resolution of the profile's toy world
    assert cfg.check.sampler.resolution == data_config(preset).toy_world.resolution


def test_toy_is_the_default_and_unknown_presets_are_named():
    assert zoo_config("toy") == ZooConfig()
    with pytest.raises(ValueError, match="unknown zoo preset 'paper'.*released weights"):
        zoo_config("paper")
    with pytest.raises(ValueError, match="prompt_rewards"):
        ZooConfig(check={"prompt_rewards": ()})
