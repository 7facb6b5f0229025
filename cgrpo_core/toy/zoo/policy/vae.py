"""Train the toy VAE: the tiny checkpoint's ``AutoencoderKL`` on every toy SynCD image.

Objective (per image, pixels in [-1, 1]; posterior z ~ q(z|x) by the reparameterisation trick)::

    loss = |x - D(z)|_1  +  edge_weight * |grad x - grad D(z)|_1  +  kl_weight * KL(q(z|x) || N(0, I))

with means over pixels (and over latent elements for the KL); ``grad`` is the pair of horizontal and
vertical neighbour differences. This is the SD/FLUX VAE recipe without its adversarial and LPIPS terms
(nothing can be downloaded, and at 64 px an L1 + edge loss keeps the toy world's crisp outlines).

Afterwards the latent statistics fix the config's ``shift_factor`` (mean) and ``scaling_factor``
(1 / std) over the posterior means of the training images, so ``(z - shift) * scale`` has zero mean and
unit variance, which is how FLUX's 0.1159 / 0.3611 were derived. The VAE is saved with
``save_pretrained`` into the checkpoint's ``vae/`` folder (atomically: a temporary folder, then a swap),
where :func:`cgrpo_core.policy.load_policy` reads it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL
from torch import Tensor
from tqdm.auto import tqdm

from cgrpo_core.toy.tiny.policy import replace_component, require_component
from cgrpo_core.toy.zoo.policy.config import ZooPolicyConfig
from cgrpo_core.toy.zoo.policy.data import load_pixels, training_images, world_resolution
from cgrpo_core.training.optim import Curve, adamw, optimizer_step, warmup_cosine

__all__ = ["latent_statistics", "reconstruct", "train_toy_vae", "vae_loss"]


def _edges(x: Tensor) -> tuple[Tensor, Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def vae_loss(
    vae: AutoencoderKL, pixels: Tensor, kl_weight: float, edge_weight: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """``(loss, L1 reconstruction error)`` of a batch ``[B, 3, H, W]`` in [-1, 1] (module docstring)."""
    posterior = vae.encode(pixels).latent_dist
    recon = vae.decode(posterior.sample(generator=generator)).sample  # (B, 3, H, W)
    l1 = (recon - pixels).abs().mean()
    (rx, ry), (px, py) = _edges(recon), _edges(pixels)
    edge = 0.5 * ((rx - px).abs().mean() + (ry - py).abs().mean())
    kl = posterior.kl().mean() / posterior.mean[0].numel()  # per latent element
    return l1 + edge_weight * edge + kl_weight * kl, l1.detach()


@torch.no_grad()
def latent_statistics(vae: AutoencoderKL, pixels: Tensor, batch_size: int = 64) -> tuple[float, float]:
    """``(mean, std)`` over every element of the posterior means of ``pixels`` ``[N, 3, H, W]``."""
    means = torch.cat([vae.encode(chunk).latent_dist.mean for chunk in pixels.split(batch_size)])
    return float(means.mean()), float(means.std())


@torch.no_grad()
def reconstruct(vae: AutoencoderKL, pixels: Tensor, batch_size: int = 64) -> Tensor:
    """Deterministic reconstructions (posterior mean, decoded) of ``pixels`` ``[N, 3, H, W]``, clamped."""
    outs = [vae.decode(vae.encode(c).latent_dist.mean).sample.clamp(-1, 1) for c in pixels.split(batch_size)]
    return torch.cat(outs)


def train_toy_vae(
    world_dir: str | Path, checkpoint_folder: str | Path, cfg: ZooPolicyConfig, progress: bool = True
) -> Curve:
    """Train the checkpoint's VAE on the toy SynCD images, set its scaling/shift, save it in ``vae/``.

    Returns the training curve ``[(step, loss)]``. Seeded by ``cfg.seed``; deterministic on a CPU.
    """
    folder = require_component(checkpoint_folder, "vae")
    train = cfg.vae
    pixels = load_pixels(training_images(world_dir), world_resolution(world_dir))  # (N, 3, H, W)
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=torch.float32)
    vae.train()
    optimizer, schedule = adamw(
        vae.parameters(), train.learning_rate, 0.0, warmup_cosine(train.steps, train.warmup_steps)
    )
    generator = torch.Generator().manual_seed(cfg.seed)
    curve: Curve = []
    bar = tqdm(range(train.steps), desc="toy VAE", disable=not progress)
    for step in bar:
        index = torch.randint(len(pixels), (min(train.batch_size, len(pixels)),), generator=generator)
        batch = pixels[index]
        if train.flip:
            flip = torch.rand(len(batch), generator=generator) < 0.5
            batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
        loss, l1 = vae_loss(vae, batch, train.kl_weight, train.edge_weight, generator)
        optimizer_step(optimizer, schedule, loss, vae.parameters())
        curve.append((step, loss.item()))
        bar.set_postfix(loss=f"{loss.item():.4f}", l1=f"{l1.item():.4f}")
    vae.eval()
    mean, std = latent_statistics(vae, pixels)
    vae.register_to_config(shift_factor=mean, scaling_factor=1.0 / std)
    replace_component(vae, folder / "vae")
    return curve
