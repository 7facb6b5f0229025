"""The tiny policy the evaluation tests generate with (random weights of the real classes, built once)."""

from __future__ import annotations

import pytest

from cgrpo_core.policy import PolicyConfig, load_policy
from cgrpo_core.toy.tiny.policy import build_tiny_checkpoint


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    folder = build_tiny_checkpoint(tmp_path_factory.mktemp("eval") / "tiny-flux")
    return load_policy(PolicyConfig(model_folder=str(folder), uno_lora=None, dtype="float32", lora_rank=0))
