"""Fixtures of the policy tests: one tiny FLUX/UNO checkpoint per session, a fresh policy per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from cgrpo_core.policy import PolicyConfig, SamplerConfig, load_policy
from cgrpo_core.toy.tiny.policy import build_tiny_checkpoint
from tests.cgrpo_core.policy.helpers import TEST_SAMPLER


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("policy") / "tiny-flux")


@pytest.fixture(scope="session")
def tiny_config(tiny_folder) -> PolicyConfig:
    return PolicyConfig(model_folder=str(tiny_folder), uno_lora=None, dtype="float32", lora_rank=4)


@pytest.fixture
def policy(tiny_config):
    return load_policy(tiny_config)


@pytest.fixture
def settings() -> SamplerConfig:
    return TEST_SAMPLER
