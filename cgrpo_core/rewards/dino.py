"""DINO and DINO-Seg: identity rewards as DINO CLS-embedding cosine similarity to the reference.

- ``dino``: plain cosine on whole images. Training reward of Table 7's "DINO, CLIP-T" row (DINOv2) and,
  with :func:`~cgrpo_core.rewards.config.dreambench_metric_models`, the DreamBench DINO metric (DINO v1
  ViT-S/16, resize 256 + centre-crop 224, as DreamBooth).
- ``dino_seg``: the paper's identity reward (section 4.1, appendix A.1): the subject is segmented in the
  generated image and in the reference (``segment="both"``), the background replaced by the mean colour
  and the image cropped around the subject before encoding (preprocessing.py), so background changes
  do not move the score. The released trainer instead compares the raw generated image with a
  pre-segmented reference at x100 (``segment="reference"``, :func:`released_reward_models`).
"""

from __future__ import annotations

from cgrpo_core.rewards.config import RewardModels
from cgrpo_core.rewards.embeddings import ImageSimilarity, ModelCache, cached, load_image_encoder
from cgrpo_core.rewards.segmentation import load_segmenter

__all__ = ["load_dino", "load_dino_seg"]


def load_dino(models: RewardModels, device: str = "cpu", cache: ModelCache | None = None) -> ImageSimilarity:
    """The ``dino`` reward: whole-image cosine similarity (``models.dino``)."""
    if models.dino.segment != "none":
        raise ValueError("the dino reward compares whole images: set dino.segment='none' (dino_seg segments)")
    return ImageSimilarity("dino", load_image_encoder(models.dino, device, cache))


def load_dino_seg(
    models: RewardModels, device: str = "cpu", cache: ModelCache | None = None
) -> ImageSimilarity:
    """The ``dino_seg`` reward: cosine similarity of the segmented subjects (``models.dino_seg``)."""
    if models.dino_seg.segment == "none":
        raise ValueError(
            "dino_seg needs segment='both' (paper) or 'reference' (released code); use dino for none"
        )
    encoder = load_image_encoder(models.dino_seg, device, cache)
    seg = models.segmenter
    segmenter = cached(cache, ("segmenter", seg, device), lambda: load_segmenter(seg, device))
    return ImageSimilarity("dino_seg", encoder, segmenter)
