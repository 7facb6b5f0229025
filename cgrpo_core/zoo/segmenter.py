"""Toy subject segmenter of DINO-Seg: a two-class ``SegformerForSemanticSegmentation`` fitted to the toy
SynCD's subject masks.

The paper segments the subject with a detector and SAM (appendix A.1); in the toy profile a tiny Segformer
learns the toy world's masks (visible subject pixels, companions excluded) with the rewards area's
:func:`~cgrpo_core.rewards.segmentation.fit_segformer` (AdamW, cross-entropy at the processor's size). The
architecture is :func:`~cgrpo_core.rewards.tiny.build_tiny_segformer`'s, saved with ``save_pretrained``
next to its ``SegformerImageProcessor`` and read by the rewards' Segformer loader.
"""

from __future__ import annotations

from pathlib import Path

from transformers import SegformerForSemanticSegmentation, SegformerImageProcessor

from cgrpo_core.rewards.segmentation import fit_segformer
from cgrpo_core.rewards.tiny import build_tiny_segformer
from cgrpo_core.zoo.common import Curve
from cgrpo_core.zoo.reward_config import SegmenterTrainConfig
from cgrpo_core.zoo.reward_data import ViewData

__all__ = ["train_segmenter"]


def train_segmenter(
    data: ViewData, cfg: SegmenterTrainConfig, folder: str | Path, progress: bool = True
) -> Curve:
    """Fit the toy Segformer to the views' masks; save it and its processor in ``folder``; its curve."""
    folder = build_tiny_segformer(folder, image_size=cfg.image_size, hidden=cfg.hidden, seed=cfg.seed)
    model = SegformerForSemanticSegmentation.from_pretrained(folder)
    processor = SegformerImageProcessor.from_pretrained(folder)
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
