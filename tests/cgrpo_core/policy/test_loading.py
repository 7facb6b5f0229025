"""The real loader on the tiny checkpoint: layout, round trip offline, and the named missing-file errors."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from diffusers import FluxTransformer2DModel
from safetensors.torch import load_file

from cgrpo_core.policy import MissingModelError, PolicyConfig, load_policy
from cgrpo_core.policy.loading import check_model_folder
from cgrpo_core.toy.tiny.config import TinyPolicyConfig
from cgrpo_core.toy.tiny.policy import build_tiny_checkpoint

FLUX_DEV_LAYOUT = {
    "scheduler",
    "text_encoder",
    "text_encoder_2",
    "tokenizer",
    "tokenizer_2",
    "transformer",
    "vae",
}


def test_tiny_checkpoint_has_the_flux_dev_layout(tiny_folder):
    assert {p.name for p in tiny_folder.iterdir() if p.is_dir()} == FLUX_DEV_LAYOUT
    index = json.loads((tiny_folder / "model_index.json").read_text())
    assert index["_class_name"] == "FluxPipeline"
    assert index["transformer"] == ["diffusers", "FluxTransformer2DModel"]
    assert index["vae"] == ["diffusers", "AutoencoderKL"]
    assert index["text_encoder"] == ["transformers", "CLIPTextModel"]
    assert index["text_encoder_2"] == ["transformers", "T5EncoderModel"]
    assert index["tokenizer"] == ["transformers", "CLIPTokenizer"]
    assert index["tokenizer_2"] == ["transformers", "T5TokenizerFast"]
    assert index["scheduler"] == ["diffusers", "FlowMatchEulerDiscreteScheduler"]
    vae = json.loads((tiny_folder / "vae" / "config.json").read_text())
    assert (vae["scaling_factor"], vae["shift_factor"], vae["latent_channels"]) == (0.3611, 0.1159, 16)
    assert json.loads((tiny_folder / "transformer" / "config.json").read_text())["guidance_embeds"] is True


def test_round_trip_through_the_real_loader_offline(tiny_folder, tiny_config):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    policy = load_policy(tiny_config)
    saved = load_file(str(tiny_folder / "transformer" / "diffusion_pytorch_model.safetensors"))
    base = {
        k.replace(".base_layer", ""): v
        for k, v in policy.transformer.state_dict().items()
        if "lora_" not in k
    }
    assert sorted(base) == sorted(saved)
    assert all(torch.equal(base[k], saved[k]) for k in saved)
    assert policy.vae_scale_factor == 4 and policy.pixel_multiple == 8 and policy.latent_channels == 16
    assert (policy.clip_max_length, policy.t5_max_length) == (77, 16)  # from the tiny tokenizers
    assert policy.scheduler_config["shift"] == 3.0 and policy.scheduler_config["use_dynamic_shifting"]
    # Only the LoRA trains: every other parameter of every component is frozen.
    modules = (policy.transformer, policy.vae, policy.text_encoder, policy.text_encoder_2)
    trainable = {id(p) for m in modules for p in m.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in policy.trainable_parameters()} and trainable


def test_diffusers_pipeline_loads_the_tiny_folder(tiny_folder):
    """The layout is the real one: diffusers' own FluxPipeline loads it as it loads FLUX.1-dev."""
    from diffusers import FluxPipeline

    pipe = FluxPipeline.from_pretrained(tiny_folder)
    assert isinstance(pipe.transformer, FluxTransformer2DModel)
    assert type(pipe.tokenizer_2).__name__ in {"T5TokenizerFast", "T5Tokenizer"}


def test_build_is_deterministic_and_never_overwrites(tmp_path, tiny_folder):
    again = build_tiny_checkpoint(tmp_path / "again")
    for sub in ("transformer", "vae"):
        name = "diffusion_pytorch_model.safetensors"
        a, b = load_file(str(tiny_folder / sub / name)), load_file(str(again / sub / name))
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tiny_folder / "tokenizer" / "tokenizer.json").read_text() == (
        again / "tokenizer" / "tokenizer.json"
    ).read_text()
    with pytest.raises(FileExistsError):
        build_tiny_checkpoint(again)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left behind


def test_tiny_sizes_are_configurable(tmp_path):
    tiny = TinyPolicyConfig(num_layers=1, num_single_layers=3, num_attention_heads=2, latent_channels=4)
    folder = build_tiny_checkpoint(tmp_path / "small", tiny, corpus=["a red cube on a table"])
    policy = load_policy(PolicyConfig(model_folder=str(folder), uno_lora=None, dtype="float32", lora_rank=2))
    t = policy.transformer
    assert (len(t.transformer_blocks), len(t.single_transformer_blocks), t.config.in_channels) == (1, 3, 16)
    assert policy.tokenizer_2("red cube").input_ids[:2] == policy.tokenizer_2.convert_tokens_to_ids(
        ["\u2581red", "\u2581cube"]
    )


def test_tiny_config_rejects_inconsistent_sizes():
    with pytest.raises(ValueError, match="must sum to attention_head_dim"):
        TinyPolicyConfig(attention_head_dim=16, axes_dims_rope=(4, 4, 4))
    with pytest.raises(ValueError, match="multiples of vae_norm_num_groups"):
        TinyPolicyConfig(vae_block_out_channels=(12, 16), vae_norm_num_groups=8)


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_incomplete_folder_names_what_is_missing(tmp_path, tiny_folder):
    broken = _copy(tiny_folder, tmp_path / "broken")
    (broken / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    shutil.rmtree(broken / "tokenizer_2")
    with pytest.raises(MissingModelError) as info:
        load_policy(PolicyConfig(model_folder=str(broken), uno_lora=None))
    message = str(info.value)
    assert "vae/diffusion_pytorch_model.safetensors" in message
    assert "tokenizer_2/tokenizer_config.json" in message
    assert "transformer/" not in message  # present files are not reported
    assert "hf download black-forest-labs/FLUX.1-dev" in message
    assert "policy.model_folder" in message


def _as_slow_clip_tokenizer(folder):
    """Rewrite ``folder/tokenizer`` as FLUX.1-dev ships it: vocab.json + merges.txt, no tokenizer.json."""
    tokenizer = folder / "tokenizer"
    bpe = json.loads((tokenizer / "tokenizer.json").read_text())["model"]
    (tokenizer / "vocab.json").write_text(json.dumps(bpe["vocab"]))
    merges = [" ".join(m) if isinstance(m, list) else m for m in bpe["merges"]]
    (tokenizer / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (tokenizer / "tokenizer.json").unlink()


def test_clip_tokenizer_in_flux_dev_files_loads_and_a_missing_merges_file_is_named(tmp_path, tiny_folder):
    slow = _copy(tiny_folder, tmp_path / "slow")
    _as_slow_clip_tokenizer(slow)
    text = "a red round dog with blue stripes in the snow"
    config = PolicyConfig(model_folder=str(slow), uno_lora=None, dtype="float32", lora_rank=0)
    reference = load_policy(config.model_copy(update={"model_folder": str(tiny_folder)}))
    assert load_policy(config).tokenizer(text).input_ids == reference.tokenizer(text).input_ids
    (slow / "tokenizer" / "merges.txt").unlink()
    with pytest.raises(MissingModelError, match=r"tokenizer/tokenizer\.json or tokenizer/vocab\.json \+ "):
        check_model_folder(slow)


def test_missing_shard_of_a_sharded_checkpoint_is_named(tmp_path, tiny_folder):
    sharded = _copy(tiny_folder, tmp_path / "sharded")
    index = {
        "metadata": {},
        "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"},
    }
    (sharded / "text_encoder_2" / "model.safetensors").unlink()
    (sharded / "text_encoder_2" / "model.safetensors.index.json").write_text(json.dumps(index))
    (sharded / "text_encoder_2" / "model-00001-of-00002.safetensors").write_bytes(b"")
    with pytest.raises(MissingModelError, match=r"text_encoder_2/model-00002-of-00002\.safetensors"):
        check_model_folder(sharded)


def test_absent_folder_and_offline_hub_are_named_errors(tmp_path):
    with pytest.raises(MissingModelError, match="does not exist"):
        load_policy(PolicyConfig(model_folder=str(tmp_path / "nowhere"), uno_lora=None))
    with pytest.raises(MissingModelError, match="hf download some-org/absent-model"):
        load_policy(PolicyConfig(base_model="some-org/absent-model", model_folder=None, uno_lora=None))


def test_missing_uno_lora_file_is_a_named_error(tiny_folder, tmp_path):
    cfg = PolicyConfig(model_folder=str(tiny_folder), uno_lora_file=str(tmp_path / "dit_lora.safetensors"))
    with pytest.raises(MissingModelError, match="dit_lora.safetensors"):
        load_policy(cfg)
