"""Fixtures of the zoo tests: a small toy world and a toy checkpoint trained at the test preset, once."""

from __future__ import annotations

import pytest
import torch

from cgrpo_core.config import experiment_config
from cgrpo_core.toy.world.config import ToyWorldConfig
from cgrpo_core.toy.world.generate import generate_toy_world
from cgrpo_core.toy.zoo.policy.base_policy import build_base_checkpoint, train_toy_base_policy
from cgrpo_core.toy.zoo.policy.vae import train_toy_vae

# 12 sets of 2-3 views at 32 px: the whole test zoo (VAE + base policy) trains in seconds.
SMALL_WORLD = ToyWorldConfig(syncd_sets=12, resolution=32, supersample=2, bench_images=2)


@pytest.fixture(scope="session")
def small_world(session_dir):
    out = session_dir / "zoo_world"
    generate_toy_world(SMALL_WORLD, out, progress=False)
    return out


@pytest.fixture(scope="session")
def test_cfg():
    return experiment_config("test").toy.zoo.policy


@pytest.fixture(scope="session")
def trained(small_world, test_cfg, tmp_path_factory):
    """``(folder, vae curve, policy curve)`` of a zoo checkpoint trained at the test preset."""
    torch.set_num_threads(2)
    folder = build_base_checkpoint(small_world, tmp_path_factory.mktemp("zoo") / "toy-flux", test_cfg)
    vae_curve = train_toy_vae(small_world, folder, test_cfg, progress=False)
    policy_curve = train_toy_base_policy(small_world, folder, test_cfg, progress=False)
    return folder, vae_curve, policy_curve
