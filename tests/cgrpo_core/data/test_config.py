"""Data configs: validation, and what the content hash ignores."""

import pytest

from cgrpo_core.data.config import DataConfig, FilterScope
from cgrpo_core.data.filtering import SCOPES
from cgrpo_core.evaluation.config import EvalConfig
from cgrpo_core.schema import config_hash
from cgrpo_core.toy.world.config import ToyWorldConfig


def test_settings_are_not_hashed_but_sizes_are():
    world = ToyWorldConfig()
    assert config_hash(world.model_copy(update={"workers": 4})) == config_hash(world)
    assert config_hash(world.model_copy(update={"seed": 1})) != config_hash(world)
    cfg = EvalConfig()
    moved = cfg.model_copy(update={"benchmark": cfg.benchmark.model_copy(update={"root": "/data/db"})})
    assert config_hash(moved) == config_hash(cfg)
    data = DataConfig()
    assert config_hash(data.model_copy(update={"syncd_root": "/data/syncd"})) == config_hash(data)
    assert DataConfig().filter.top_k == 10_000  # appendix A


def test_validation_messages():
    with pytest.raises(ValueError, match="planted bad shares sum to 1.20 > 1"):
        ToyWorldConfig(drift_share=0.5, duplicate_share=0.5, low_quality_share=0.2)
    with pytest.raises(ValueError):
        ToyWorldConfig(resolution=8)
    assert set(FilterScope.__args__) == set(SCOPES)
