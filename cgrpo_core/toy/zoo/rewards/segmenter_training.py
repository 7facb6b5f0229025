"""Toy subject segmenter of DINO-Seg: a two-class ``SegformerForSemanticSegmentation`` fitted to the toy
SynCD's subject masks.

The paper segments the subject with a detector and SAM (appendix A.1); in the toy profile a tiny Segformer
learns the toy world's masks (visible subject pixels, companions excluded) with :func:`fit_segformer`
(AdamW, cross-entropy at the processor's size). The architecture is
:func:`~cgrpo_core.toy.tiny.rewards.build_tiny_segformer`'s, saved with ``save_pretrained`` next to its
``SegformerImageProcessor`` and read by the rewards' Segformer loader.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import SegformerForSemanticSegmentation, SegformerImageProcessorPil

from cgrpo_core.toy.tiny.rewards import build_tiny_segformer
from cgrpo_core.toy.zoo.rewards.config import SegmenterTrainConfig
from cgrpo_core.toy.zoo.rewards.data import ViewData
from cgrpo_core.training.optim import Curve, adamw, optimizer_step

__all__ = ["fit_segformer", "train_segmenter"]


def fit_segformer(
    model: SegformerForSemanticSegmentation,
    processor: SegformerImageProcessorPil,
    images: Sequence[Image.Image],
    masks: Sequence[np.ndarray],
    steps: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> list[float]:
    """Train a subject/background Segformer on (image, mask) pairs with AdamW; returns the step losses.

    Masks are resized (nearest) to the processor's input size; the model's own loss upsamples its
    1/4-resolution logits to the labels (cross-entropy, transformers' Segformer head).
    """
    if len(images) != len(masks) or not images:
        raise ValueError(f"need as many masks as images (got {len(images)} images, {len(masks)} masks)")
    pixels = processor(images=list(images), return_tensors="pt")["pixel_values"]  # (N, 3, S, S)
    size = (int(pixels.shape[-1]), int(pixels.shape[-2]))  # PIL (width, height)
    resized = [Image.fromarray(m.astype(np.uint8)).resize(size, Image.Resampling.NEAREST) for m in masks]
    labels = torch.from_numpy(np.stack([np.array(r) for r in resized])).long()  # (N, S, S)
    generator = torch.Generator().manual_seed(seed)
    optimizer, schedule = adamw(model.parameters(), lr, 0.01)  # torch's AdamW default weight decay
    model.train()
    losses = []
    # Dropout and drop-path draw from the global generator: fork it, seeded, so that the fit depends on
    # ``seed`` alone and not on whatever ran before in the process.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(steps):
            idx = torch.randperm(len(images), generator=generator)[:batch_size]
            loss = model(pixel_values=pixels[idx], labels=labels[idx]).loss
            optimizer_step(optimizer, schedule, loss, model.parameters())
            losses.append(loss.item())
    model.eval()
    return losses


def train_segmenter(
    data: ViewData, cfg: SegmenterTrainConfig, folder: str | Path, progress: bool = True
) -> Curve:
    """Fit the toy Segformer to the views' masks; save it and its processor in ``folder``; its curve."""
    folder = build_tiny_segformer(folder, image_size=cfg.image_size, hidden=cfg.hidden, seed=cfg.seed)
    model = SegformerForSemanticSegmentation.from_pretrained(folder)
    processor = SegformerImageProcessorPil.from_pretrained(folder)
    images = [data.pil(i) for i in range(len(data))]
    losses = fit_segformer(
        model,
        processor,
        images,
        list(data.masks),
        steps=cfg.steps,
        lr=cfg.learning_rate,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
    )
    model.save_pretrained(folder)
    return list(enumerate(losses))
