"""Session fixtures of the reward-zoo tests: a small toy world and a test-preset reward zoo, built once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from cgrpo_core.config import experiment_config
from cgrpo_core.rewards.config import RewardModels
from cgrpo_core.toy.world.config import ToyWorldConfig
from cgrpo_core.toy.world.generate import generate_toy_world
from cgrpo_core.toy.zoo.rewards.build import train_reward_zoo
from cgrpo_core.toy.zoo.rewards.config import ZooRewardsConfig

# 24 sets at 32 px: the zoo's test preset trains on it in a few seconds
SMALL_WORLD = ToyWorldConfig(seed=3, syncd_sets=24, resolution=32, supersample=2, bench_images=2)
TEST_ZOO = experiment_config("test").toy.zoo.rewards.model_copy(
    update={"threads": 1}
)  # robust on a busy machine


@dataclass(frozen=True)
class BuiltZoo:
    folder: Path
    models: RewardModels
    curves: dict
    checks: dict
    cfg: ZooRewardsConfig


@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zoo_world") / "world"
    generate_toy_world(SMALL_WORLD, out, progress=False)
    return out


@pytest.fixture(scope="session")
def zoo(small_world, tmp_path_factory) -> BuiltZoo:
    folder = tmp_path_factory.mktemp("reward_zoo") / "zoo"
    models, curves, checks = train_reward_zoo(small_world, folder, TEST_ZOO, progress=False)
    return BuiltZoo(folder, models, curves, checks, TEST_ZOO)
