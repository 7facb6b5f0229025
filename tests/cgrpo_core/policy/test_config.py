"""PolicyConfig: validation and what enters the content hash."""

from __future__ import annotations

import pytest

from cgrpo_core.policy import PolicyConfig
from cgrpo_core.schema import config_hash


def test_paper_defaults_follow_the_released_code():
    cfg = PolicyConfig()
    assert cfg.base_model == "black-forest-labs/FLUX.1-dev" and cfg.uno_lora == "bytedance-research/UNO"
    assert (cfg.lora_rank, cfg.effective_lora_alpha, cfg.lora_targets) == (512, 512.0, ("attention",))
    assert cfg.unope == "diagonal" and cfg.dtype == "bfloat16" and not cfg.allow_empty_prompt
    assert cfg.gradient_checkpointing  # released: on


def test_locations_are_not_hashed_but_weights_and_sizes_are():
    cfg = PolicyConfig()
    moved = PolicyConfig(model_folder="/data/flux", uno_lora_file="/data/uno/dit_lora.safetensors")
    assert config_hash(cfg) == config_hash(moved)
    assert config_hash(cfg) == config_hash(PolicyConfig(gradient_checkpointing=False))  # same numbers
    for change in ({"lora_rank": 64}, {"unope": "width"}, {"base_model": "x/y"}, {"lora_seed": 1}):
        assert config_hash(PolicyConfig(**change)) != config_hash(cfg), change


def test_invalid_lora_settings_are_rejected():
    with pytest.raises(ValueError, match="lora_targets is empty"):
        PolicyConfig(lora_targets=())
    with pytest.raises(ValueError, match="duplicates"):
        PolicyConfig(lora_targets=("attention", "attention"))
    with pytest.raises(ValueError):
        PolicyConfig(lora_targets=("attn",))
    with pytest.raises(ValueError):
        PolicyConfig(unope="d")
    assert PolicyConfig(lora_rank=0, lora_targets=()).lora_rank == 0
