"""The toy VAE: it reconstructs toy images, its latents are normalised, and the real loader reads it."""

from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKL

from cgrpo_core.policy import PolicyConfig, encode_references, load_policy
from cgrpo_core.toy.zoo.policy.data import load_pixels, training_images, world_resolution
from cgrpo_core.toy.zoo.policy.vae import latent_statistics, reconstruct


def test_reconstruction_error_far_below_the_images_spread(trained, small_world):
    folder, curve, _ = trained
    pixels = load_pixels(training_images(small_world), world_resolution(small_world))
    # Baseline: predicting every pixel by its per-channel median, the best constant under L1.
    median = pixels.permute(1, 0, 2, 3).reshape(3, -1).median(dim=1).values.view(1, 3, 1, 1)
    spread = (pixels - median).abs().mean().item()
    error = (reconstruct(AutoencoderKL.from_pretrained(folder / "vae"), pixels) - pixels).abs().mean().item()
    assert error < 0.5 * spread, (error, spread)
    assert sum(v for _, v in curve[-10:]) < 0.7 * sum(v for _, v in curve[:10])


def test_untrained_vae_reconstructs_worse(trained, small_world, test_cfg, tmp_path):
    from cgrpo_core.toy.zoo.policy.base_policy import build_base_checkpoint

    folder, _, _ = trained
    fresh = build_base_checkpoint(small_world, tmp_path / "fresh", test_cfg)
    pixels = load_pixels(training_images(small_world)[:8], world_resolution(small_world))
    errors = [
        (reconstruct(AutoencoderKL.from_pretrained(f / "vae"), pixels) - pixels).abs().mean().item()
        for f in (folder, fresh)
    ]
    assert errors[0] < 0.5 * errors[1]


def test_scaled_latents_have_zero_mean_and_unit_variance_through_the_policy_path(trained, small_world):
    folder, _, _ = trained
    policy = load_policy(PolicyConfig(model_folder=str(folder), uno_lora=None, dtype="float32", lora_rank=0))
    images = training_images(small_world)
    tokens = torch.cat([encode_references(policy, [p], world_resolution(small_world))[0] for p in images])
    assert abs(tokens.mean().item()) < 1e-3
    assert abs(tokens.std().item() - 1.0) < 1e-3
    mean, std = latent_statistics(policy.vae, load_pixels(images, world_resolution(small_world)))
    assert policy.vae.config.shift_factor == pytest.approx(mean, rel=1e-5)
    assert policy.vae.config.scaling_factor == pytest.approx(1.0 / std, rel=1e-5)
