"""The toy base policy: trained by flow matching, loaded by the real loader, deterministic."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from cgrpo_core.config import experiment_config
from cgrpo_core.policy import PolicyConfig, encode_condition, load_policy, sample, to_uint8
from cgrpo_core.policy.images import decode_latents
from cgrpo_core.schema import override
from cgrpo_core.toy.zoo.policy.base_policy import (
    build_base_checkpoint,
    logit_normal,
    shifted_uniform,
    train_toy_base_policy,
)
from cgrpo_core.toy.zoo.policy.checks import toybench_items
from cgrpo_core.toy.zoo.policy.vae import train_toy_vae

TEST_SAMPLER = experiment_config("test").sampler


def _weights(folder):
    return {
        **{
            f"vae.{k}": v
            for k, v in load_file(folder / "vae" / "diffusion_pytorch_model.safetensors").items()
        },
        **{
            f"transformer.{k}": v
            for k, v in load_file(folder / "transformer" / "diffusion_pytorch_model.safetensors").items()
        },
    }


def test_trained_folder_loads_through_the_real_loader_and_samples(trained, small_world):
    folder, _, curve = trained
    policy = load_policy(PolicyConfig(model_folder=str(folder), uno_lora=None, dtype="float32", lora_rank=4))
    item = toybench_items(small_world)[0]
    cond = encode_condition(policy, item.prompt, item.reference, TEST_SAMPLER.resolution)
    latents = sample(policy, cond, TEST_SAMPLER, 2, generator=torch.Generator().manual_seed(0))
    images = to_uint8(decode_latents(policy, latents, TEST_SAMPLER.resolution))
    assert images.shape == (2, 32, 32, 3)
    assert images.float().std() > 5  # a picture, not a flat field
    assert sum(v for _, v in curve[-10:]) < 0.8 * sum(v for _, v in curve[:10])


def test_training_changes_every_transformer_weight(trained, small_world, test_cfg, tmp_path):
    folder, _, _ = trained
    fresh = _weights(build_base_checkpoint(small_world, tmp_path / "fresh", test_cfg))
    done = _weights(folder)
    changed = [k for k in fresh if k.startswith("transformer.") and not torch.equal(fresh[k], done[k])]
    assert len(changed) == sum(k.startswith("transformer.") for k in fresh)


def _train(world, cfg, folder):
    build_base_checkpoint(world, folder, cfg)
    train_toy_vae(world, folder, cfg, progress=False)
    train_toy_base_policy(world, folder, cfg, progress=False)
    return _weights(folder)


def test_same_seed_same_weights_other_seed_other_weights(small_world, test_cfg, tmp_path):
    cfg = override(test_cfg, {"vae.steps": 8, "policy.steps": 8, "policy.ema_decay": 0.9})
    first, second = _train(small_world, cfg, tmp_path / "a"), _train(small_world, cfg, tmp_path / "b")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = _train(small_world, override(cfg, {"seed": 1, "tiny.seed": 1}), tmp_path / "c")
    assert not torch.equal(first["transformer.proj_out.weight"], other["transformer.proj_out.weight"])


def test_training_needs_the_checkpoint(small_world, test_cfg, tmp_path):
    with pytest.raises(FileNotFoundError, match="build_base_checkpoint"):
        train_toy_base_policy(small_world, tmp_path / "missing", test_cfg, progress=False)


@pytest.mark.parametrize("sampler", [shifted_uniform, logit_normal])
def test_sigma_samplers_median_under_shift(sampler):
    # Both base distributions have median 1/2; the shift s*u / (1 + (s-1)*u) is monotone, so the median
    # becomes 3 * 0.5 / (1 + 2 * 0.5) = 0.75 at shift 3 (and stays 0.5 at shift 1).
    generator = torch.Generator().manual_seed(0)
    for shift, median in ((3.0, 0.75), (1.0, 0.5)):
        sigmas = sampler(20000, shift, generator)
        assert sigmas.min() >= 0 and sigmas.max() <= 1
        assert sigmas.median().item() == pytest.approx(median, abs=0.01)
