"""LoRA: targets, training only the adapter, save/load round trip, UNO key conversion and fusing."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch
from diffusers.loaders.lora_conversion_utils import _convert_xlabs_flux_lora_to_diffusers
from safetensors import safe_open
from torch.testing import assert_close

from cgrpo_core.policy import (
    PolicyConfig,
    convert_uno_lora,
    encode_condition,
    fuse_uno_lora,
    load_lora,
    load_policy,
    save_lora,
    velocity,
)
from cgrpo_core.policy.config import LoraTarget
from cgrpo_core.policy.lora import LORA_FILE, TARGET_GROUPS, fuse_lora, lora_target_modules
from tests.cgrpo_core.policy.helpers import checkerboard


def _velocity(policy, settings, seed=0):
    cond = encode_condition(policy, "a dog in the snow", checkerboard(), settings.resolution)
    latents = torch.randn(3, cond.num_tokens, 64, generator=torch.Generator().manual_seed(seed))
    return velocity(policy, cond, latents, torch.tensor([0.9, 0.5, 0.1]), settings.guidance)


def _randomize_lora(policy, scale=0.05):
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in policy.trainable_parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen))


def test_target_registry_matches_config_literal():
    assert set(TARGET_GROUPS) == set(LoraTarget.__args__)


def test_targets_are_uno_attention_layers(policy):
    names = lora_target_modules(policy.transformer, ["attention"])
    # 2 double blocks x (img q,k,v,out + txt q,k,v,out) + 2 single blocks x (q, k, v, proj_out)
    assert len(names) == 2 * 8 + 2 * 4
    assert "transformer_blocks.1.attn.to_add_out" in names and "single_transformer_blocks.0.proj_out" in names
    assert "proj_out" not in names  # the final projection of the model is not adapted
    mlp = lora_target_modules(policy.transformer, ["mlp"])
    assert len(mlp) == 2 * 4 + 2 and "single_transformer_blocks.1.proj_mlp" in mlp
    with pytest.raises(ValueError, match="choose from"):
        lora_target_modules(policy.transformer, ["attn"])


def test_rank_alpha_targets_from_config(tiny_config):
    policy = load_policy(
        tiny_config.model_copy(
            update={"lora_rank": 3, "lora_alpha": 6.0, "lora_targets": ("attention", "mlp")}
        )
    )
    lora_config = policy.transformer.peft_config["default"]
    assert (lora_config.r, lora_config.lora_alpha) == (3, 6.0)
    adapted = [name for name, module in policy.transformer.named_modules() if hasattr(module, "lora_A")]
    assert sorted(adapted) == sorted(lora_target_modules(policy.transformer, ["attention", "mlp"]))
    assert len(adapted) == 24 + 10
    a = policy.transformer.transformer_blocks[0].attn.to_q.lora_A["default"].weight
    b = policy.transformer.transformer_blocks[0].attn.to_q.lora_B["default"].weight
    assert (
        a.shape == (3, 64) and b.shape == (64, 3) and torch.count_nonzero(b) == 0
    )  # B = 0: starts at the base
    no_lora = load_policy(tiny_config.model_copy(update={"lora_rank": 0}))
    assert no_lora.trainable_parameters() == []


def test_lora_init_is_seeded(tiny_config):
    def lora_a(cfg):
        return torch.cat([p.flatten() for p in load_policy(cfg).trainable_parameters()])

    torch.manual_seed(123)  # the global RNG plays no part
    first = lora_a(tiny_config)
    assert torch.equal(first, lora_a(tiny_config))
    assert not torch.equal(first, lora_a(tiny_config.model_copy(update={"lora_seed": 1})))


def test_fresh_lora_leaves_outputs_unchanged(tiny_config, settings):
    with_lora = _velocity(load_policy(tiny_config), settings)
    without = _velocity(load_policy(tiny_config.model_copy(update={"lora_rank": 0})), settings)
    assert torch.equal(with_lora, without)


def test_training_step_changes_only_the_lora(policy, settings):
    base_before = {k: v.clone() for k, v in policy.transformer.state_dict().items() if "lora_" not in k}
    lora_before = {k: v.clone() for k, v in policy.transformer.state_dict().items() if "lora_B" in k}
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=1e-3)
    loss = _velocity(policy, settings).square().mean()
    loss.backward()
    assert all(p.grad is None for p in policy.transformer.parameters() if not p.requires_grad)
    optimizer.step()
    after = policy.transformer.state_dict()
    assert all(torch.equal(after[k], v) for k, v in base_before.items())  # bit-identical base
    assert all(not torch.equal(after[k], v) for k, v in lora_before.items())  # every B moved


def test_lora_weights_are_fp32_masters_over_a_bf16_base(tiny_config, settings, tmp_path):
    # bf16 (the paper profile's dtype): the base stays bf16, the trained LoRA is float32 after add_lora and
    # after load_lora; one AdamW step at the paper's lr 1e-5 then moves every element with a gradient (in
    # bf16 an update of ~1e-5 is below half an ulp of most weights: they never move, weight decay is lost).
    policy = load_policy(tiny_config.model_copy(update={"dtype": "bfloat16"}))
    base = policy.transformer.transformer_blocks[0].attn.to_q.base_layer.weight
    assert base.dtype == torch.bfloat16
    assert {p.dtype for p in policy.trainable_parameters()} == {torch.float32}
    _randomize_lora(policy)  # B != 0, so A gets a gradient too
    before = [p.detach().clone() for p in policy.trainable_parameters()]
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=1e-5, weight_decay=1e-4)
    _velocity(policy, settings).float().square().mean().backward()
    optimizer.step()
    for old, param in zip(before, policy.trainable_parameters(), strict=True):
        moved = param.detach() != old
        assert moved[param.grad != 0].all(), "an element with a gradient did not move"
    save_lora(policy.transformer, tmp_path / "lora")
    reloaded = load_policy(tiny_config.model_copy(update={"dtype": "bfloat16"}))
    load_lora(reloaded.transformer, tmp_path / "lora")
    assert {p.dtype for p in reloaded.trainable_parameters()} == {torch.float32}
    assert all(
        torch.equal(a, b)
        for a, b in zip(policy.trainable_parameters(), reloaded.trainable_parameters(), strict=True)
    )


def test_save_and_load_round_trip(policy, tiny_config, settings, tmp_path):
    _randomize_lora(policy)
    expected = _velocity(policy, settings)
    path = save_lora(policy.transformer, tmp_path / "lora")
    assert path.name == LORA_FILE and not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    with safe_open(str(path), "pt") as handle:
        keys = list(handle.keys())
        meta = json.loads(handle.metadata()["lora_adapter_metadata"])
    assert all(k.startswith("transformer.") and ".lora_" in k for k in keys) and len(keys) == 2 * 24
    assert (meta["transformer.r"], meta["transformer.lora_alpha"]) == (4, 4.0)

    fresh = load_policy(tiny_config)
    assert not torch.equal(_velocity(fresh, settings), expected)
    load_lora(fresh.transformer, tmp_path / "lora")
    assert torch.equal(_velocity(fresh, settings), expected)
    assert {id(p) for p in fresh.trainable_parameters()} == {
        id(p) for p in fresh.transformer.parameters() if p.requires_grad
    }
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_lora(fresh.transformer, tmp_path / "nowhere")


def test_alpha_other_than_rank_survives_save_and_load(tiny_config, tiny_folder, settings, tmp_path):
    """The adapter's alpha/rank scaling (here 16/4 = 4) comes back from the file, through our loader and
    through diffusers' own FluxPipeline.load_lora_weights."""
    from diffusers import FluxPipeline

    from cgrpo_core.policy.lora import ADAPTER

    config = tiny_config.model_copy(update={"lora_alpha": 16.0})
    policy = load_policy(config)
    _randomize_lora(policy)
    expected = _velocity(policy, settings)
    save_lora(policy.transformer, tmp_path / "lora")

    fresh = load_policy(tiny_config)  # alpha = rank: a different scaling until the file's is loaded
    load_lora(fresh.transformer, tmp_path / "lora")
    assert fresh.transformer.transformer_blocks[0].attn.to_q.scaling[ADAPTER] == 4.0
    assert torch.equal(_velocity(fresh, settings), expected)

    pipe = FluxPipeline.from_pretrained(tiny_folder)
    pipe.load_lora_weights(tmp_path / "lora", adapter_name=ADAPTER)
    assert_close(_velocity(dataclasses.replace(fresh, transformer=pipe.transformer), settings), expected)


def test_saved_lora_loads_with_diffusers_own_api(policy, tmp_path):
    from diffusers import FluxPipeline

    _randomize_lora(policy)
    save_lora(policy.transformer, tmp_path)
    state = FluxPipeline.lora_state_dict(tmp_path)
    ours = policy.transformer.transformer_blocks[0].attn.to_q.lora_B["default"].weight
    assert torch.equal(state["transformer.transformer_blocks.0.attn.to_q.lora_B.weight"], ours)


# ---------------------------------------------------------------------------------------------------
# UNO's LoRA


def synthetic_uno_lora(transformer, rank=3, scale=0.05, seed=1) -> dict[str, torch.Tensor]:
    """A LoRA in UNO's released key names (uno/flux/modules/layers.py: DoubleStreamBlockLoraProcessor has
    qkv_lora1/proj_lora1 (image), qkv_lora2/proj_lora2 (text); SingleStreamBlockLoraProcessor has qkv_lora
    and proj_lora on linear2 (input hidden + mlp_hidden)); each a LoRALinearLayer with down/up."""
    dim, mlp = transformer.inner_dim, transformer.single_transformer_blocks[0].mlp_hidden_dim
    gen = torch.Generator().manual_seed(seed)
    shapes = {
        "double": {
            "qkv_lora1": (dim, 3 * dim),
            "proj_lora1": (dim, dim),
            "qkv_lora2": (dim, 3 * dim),
            "proj_lora2": (dim, dim),
        },
        "single": {"qkv_lora": (dim, 3 * dim), "proj_lora": (dim + mlp, dim)},
    }
    counts = {
        "double": len(transformer.transformer_blocks),
        "single": len(transformer.single_transformer_blocks),
    }
    state = {}
    for kind, layers in shapes.items():
        for i in range(counts[kind]):
            for name, (fan_in, fan_out) in layers.items():
                key = f"{kind}_blocks.{i}.processor.{name}"
                state[f"{key}.down.weight"] = scale * torch.randn(rank, fan_in, generator=gen)
                state[f"{key}.up.weight"] = scale * torch.randn(fan_out, rank, generator=gen)
    return state


def test_uno_conversion_agrees_with_diffusers_xlabs_converter(policy):
    uno = synthetic_uno_lora(policy.transformer)
    ours = convert_uno_lora(uno)
    theirs = _convert_xlabs_flux_lora_to_diffusers(dict(uno))  # an independent implementation (x-flux format)
    assert sorted(ours) == sorted(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_uno_conversion_by_hand(policy):
    uno = synthetic_uno_lora(policy.transformer)
    ours = convert_uno_lora(uno)
    down, up = (
        uno["double_blocks.1.processor.qkv_lora2.down.weight"],
        uno["double_blocks.1.processor.qkv_lora2.up.weight"],
    )
    # the text-stream k projection gets the shared down and the middle third of up
    assert torch.equal(ours["transformer.transformer_blocks.1.attn.add_k_proj.lora_A.weight"], down)
    assert torch.equal(ours["transformer.transformer_blocks.1.attn.add_k_proj.lora_B.weight"], up[64:128])
    assert torch.equal(
        ours["transformer.single_transformer_blocks.0.proj_out.lora_B.weight"],
        uno["single_blocks.0.processor.proj_lora.up.weight"],
    )
    prefixed = convert_uno_lora({f"module.{k}": v for k, v in uno.items()})  # accelerate-wrapped names
    assert sorted(prefixed) == sorted(ours)


def test_uno_conversion_rejects_foreign_or_partial_state():
    with pytest.raises(ValueError, match="not a UNO LoRA key"):
        convert_uno_lora({"double_blocks.0.img_attn.qkv.weight": torch.zeros(3, 3)})
    with pytest.raises(ValueError, match="lacks its up"):
        convert_uno_lora({"single_blocks.0.processor.qkv_lora.down.weight": torch.zeros(2, 4)})


def test_fused_uno_lora_equals_the_unfused_adapter(tiny_config, settings):
    policy = load_policy(tiny_config.model_copy(update={"lora_rank": 0}))
    uno = synthetic_uno_lora(policy.transformer)
    unfused = copy.deepcopy(policy)
    unfused.transformer.load_lora_adapter(convert_uno_lora(uno), prefix="transformer", adapter_name="uno")
    base_q = policy.transformer.transformer_blocks[0].attn.to_q.weight.clone()
    fuse_uno_lora(policy.transformer, uno)
    # by hand: W_q + up[:64] @ down of the image-stream qkv LoRA, scale 1
    down, up = (
        uno["double_blocks.0.processor.qkv_lora1.down.weight"],
        uno["double_blocks.0.processor.qkv_lora1.up.weight"],
    )
    assert_close(policy.transformer.transformer_blocks[0].attn.to_q.weight, base_q + up[:64] @ down)
    assert_close(_velocity(policy, settings), _velocity(unfused, settings), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="names no Linear"):
        fuse_lora(policy.transformer, {"transformer.nowhere.lora_A.weight": torch.zeros(1, 1)})


def test_loader_fuses_the_uno_lora_file(tiny_config, settings, tmp_path):
    from safetensors.torch import save_file

    plain = load_policy(tiny_config)
    uno = synthetic_uno_lora(plain.transformer)
    save_file(uno, str(tmp_path / "dit_lora.safetensors"))
    cfg = PolicyConfig(
        **{
            **tiny_config.model_dump(),
            "uno_lora": "bytedance-research/UNO",
            "uno_lora_file": str(tmp_path / "dit_lora.safetensors"),
        }
    )
    with_uno = load_policy(cfg)
    fuse_uno_lora(plain.transformer, uno)
    assert torch.equal(_velocity(with_uno, settings), _velocity(plain, settings))
