"""Data configs: profiles, validation, and what the content hash ignores."""

import pytest

from cgrpo_core.config import config_hash, flatten
from cgrpo_core.data.config import (
    DATA_PROFILE_OVERRIDES,
    DataConfig,
    FilterScope,
    ToyWorldConfig,
    data_config,
)
from cgrpo_core.data.filtering import SCOPES


def test_profiles_change_only_their_listed_fields():
    base = flatten(DataConfig())
    for profile, changes in DATA_PROFILE_OVERRIDES.items():
        cfg = flatten(data_config(profile))
        assert {k for k in base if base[k] != cfg[k]} == {k for k, v in changes.items() if base[k] != v}
    assert data_config("paper") == DataConfig() and data_config("paper").filter.top_k == 10_000
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        data_config("huge")


def test_settings_are_not_hashed_but_sizes_are():
    world = ToyWorldConfig()
    assert config_hash(world.model_copy(update={"workers": 4})) == config_hash(world)
    assert config_hash(world.model_copy(update={"seed": 1})) != config_hash(world)
    cfg = DataConfig()
    moved = cfg.model_copy(update={"dreambench": cfg.dreambench.model_copy(update={"root": "/data/db"})})
    assert config_hash(moved) == config_hash(cfg)


def test_validation_messages():
    with pytest.raises(ValueError, match="planted bad shares sum to 1.20 > 1"):
        ToyWorldConfig(drift_share=0.5, duplicate_share=0.5, low_quality_share=0.2)
    with pytest.raises(ValueError):
        ToyWorldConfig(resolution=8)
    assert set(FilterScope.__args__) == set(SCOPES)
