"""Image embeddings and the image-image cosine rewards built on them (DINO, DINO-Seg, CLIP-I).

Backbones (``EmbeddingRewardConfig.family``), each read through its own transformers class:

- ``dinov2``: ``Dinov2Model``; the embedding is ``pooler_output``, the final-layer-normed CLS token
  (the released trainer's "CLS-token cosine"; paper: ViT-L/14, released trainer: base).
- ``dinov2_reg``: ``Dinov2WithRegistersModel``, same embedding (SynCD's identity filter uses DINOv2
  ViT-L/14 with registers, reference/NOTES.md).
- ``dino_v1``: ``ViTModel`` without its pooling layer (the DINO checkpoints ship none); the embedding is
  ``last_hidden_state[:, 0]``, the final-layer-normed CLS token, as in DreamBooth's DINO metric
  (``facebook/dino-vits16``).
- ``clip``: ``CLIPModel.get_image_features``, the projected image embedding (CLIP-I).

Similarity: ``scale * mean_k cos(e(image), e(reference_k))`` over every reference image given for the
image (DreamBench: all reference images of the subject), with e() the embedding of the prepared
(optionally subject-masked, see preprocessing.py) image. Identical images give exactly ``scale``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import AutoImageProcessor, CLIPModel, Dinov2Model, Dinov2WithRegistersModel, ViTModel

from cgrpo_core.rewards.base import RewardBatch, batched, checkpoint_dir, loading
from cgrpo_core.rewards.config import EmbeddingRewardConfig
from cgrpo_core.rewards.preprocessing import (
    apply_mask,
    image_key,
    load_image,
    load_mask,
    mask_key,
    mean_colour,
    prepare_pixels,
)
from cgrpo_core.rewards.segmentation import Segmenter

__all__ = [
    "BACKBONES",
    "ImageEncoder",
    "ImageSimilarity",
    "cached",
    "load_backbone",
    "load_image_encoder",
    "subject_embedder",
]

ModelCache = dict[tuple, Any]


def _dinov2_features(model, pixels: torch.Tensor) -> torch.Tensor:
    return model(pixel_values=pixels).pooler_output  # (N, D): layer-normed CLS


def _dino_v1_features(model, pixels: torch.Tensor) -> torch.Tensor:
    return model(pixel_values=pixels).last_hidden_state[:, 0]  # (N, D): layer-normed CLS


def _clip_features(model, pixels: torch.Tensor) -> torch.Tensor:
    return model.get_image_features(pixel_values=pixels).pooler_output  # (N, P): projected


# family -> (model class, from_pretrained kwargs, image features)
BACKBONES: dict[str, tuple[type, dict[str, Any], Callable[[Any, torch.Tensor], torch.Tensor]]] = {
    "dinov2": (Dinov2Model, {}, _dinov2_features),
    "dinov2_reg": (Dinov2WithRegistersModel, {}, _dinov2_features),
    "dino_v1": (ViTModel, {"add_pooling_layer": False}, _dino_v1_features),
    "clip": (CLIPModel, {}, _clip_features),
}


def cached(cache: ModelCache | None, key: tuple, load: Callable[[], Any]) -> Any:
    """``load()`` once per key when a cache is given (models are shared between rewards)."""
    if cache is None:
        return load()
    if key not in cache:
        cache[key] = load()
    return cache[key]


def load_backbone(family: str, model_id: str, local_dir: str | None, device: str) -> tuple[Any, Any]:
    """(model in eval mode on ``device``, its image processor) from a save_pretrained folder or the hub."""
    if family not in BACKBONES:
        raise ValueError(f"unknown backbone family {family!r}; choose one of {sorted(BACKBONES)}")
    cls, kwargs, _ = BACKBONES[family]
    path = checkpoint_dir(f"{family} model", model_id, local_dir)
    model = loading(f"{family} model", model_id, lambda: cls.from_pretrained(path, **kwargs))
    processor = loading(
        f"{family} image processor", model_id, lambda: AutoImageProcessor.from_pretrained(path)
    )
    return model.to(device).eval(), processor


@dataclass
class ImageEncoder:
    """A backbone plus its image preparation: PIL images -> embeddings [N, D] (float32, CPU)."""

    family: str
    model: Any
    processor: Any
    cfg: EmbeddingRewardConfig
    device: str

    @property
    def fill(self) -> tuple[int, int, int]:
        """Background colour for masking: the processor mean (normalises to 0)."""
        return mean_colour(self.processor.image_mean)

    def pixels(self, images: list[Image.Image]) -> torch.Tensor:
        cfg = self.cfg
        return prepare_pixels(images, self.processor, cfg.image_prep, cfg.crop_fraction, cfg.interpolation)

    def embed(self, images: list[Image.Image]) -> torch.Tensor:
        features = BACKBONES[self.family][2]
        dtype = next(self.model.parameters()).dtype
        return batched(
            lambda chunk: features(self.model, self.pixels(chunk).to(self.device, dtype)),
            images,
            self.cfg.batch_size,
            desc=f"{self.family} embeddings",
        )


def load_image_encoder(
    cfg: EmbeddingRewardConfig, device: str = "cpu", cache: ModelCache | None = None
) -> ImageEncoder:
    """An :class:`ImageEncoder` for ``cfg`` (the model is shared through ``cache``)."""
    model, processor = cached(
        cache,
        ("backbone", cfg.family, cfg.model_id, cfg.local_dir, device),
        lambda: load_backbone(cfg.family, cfg.model_id, cfg.local_dir, device),
    )
    return ImageEncoder(cfg.family, model, processor, cfg, device)


class ImageSimilarity:
    """Mean cosine similarity of each image to its references, times ``scale`` (DINO, DINO-Seg, CLIP-I)."""

    def __init__(self, name: str, encoder: ImageEncoder, segmenter: Segmenter | None = None):
        if encoder.cfg.segment != "none" and segmenter is None:
            raise ValueError(f"{name}: segment={encoder.cfg.segment!r} needs a segmenter")
        self.name, self.encoder, self.segmenter = name, encoder, segmenter
        reads_subjects = segmenter is not None and segmenter.needs_subjects
        self.needs = frozenset({"references", "subjects"} if reads_subjects else {"references"})

    def _masked(self, images: list[Image.Image], masks) -> list[Image.Image]:
        cfg = self.encoder.cfg
        return [
            apply_mask(im, m, self.encoder.fill, cfg.crop_to_mask, cfg.mask_margin)
            for im, m in zip(images, masks, strict=True)
        ]

    def _references(self, batch: RewardBatch) -> tuple[list[Image.Image], list[list[int]]]:
        """Unique (prepared) reference images and, per image, the indices of its references."""
        segment = self.encoder.cfg.segment in ("both", "reference")
        unique: dict[tuple, int] = {}
        hashes: dict[int, str] = {}  # by object id: a group of 12 usually shares one reference object

        def content(obj) -> str | None:
            if obj is not None and id(obj) not in hashes:
                hashes[id(obj)] = image_key(obj) if isinstance(obj, Image.Image) else mask_key(obj)
            return None if obj is None else hashes[id(obj)]

        images, masks, subjects, index = [], [], [], []
        for i, refs in enumerate(batch.references):
            row = []
            for k, ref in enumerate(refs):
                mask = batch.reference_masks[i][k] if batch.reference_masks is not None else None
                subject = batch.subjects[i] if batch.subjects is not None else None
                key = (content(ref), content(mask), subject if segment else None)
                if key not in unique:
                    unique[key] = len(images)
                    images.append(ref)
                    masks.append(mask)
                    subjects.append(subject)
                row.append(unique[key])
            index.append(row)
        if segment:
            todo = [j for j, m in enumerate(masks) if m is None]
            if todo:
                names = None if batch.subjects is None else [subjects[j] for j in todo]
                for j, m in zip(todo, self.segmenter([images[j] for j in todo], names), strict=True):
                    masks[j] = m
            images = self._masked(images, masks)
        return images, index

    def __call__(self, batch: RewardBatch) -> torch.Tensor:
        """Similarities [N] (float32)."""
        batch.require(self.name, self.needs)
        images = list(batch.images)
        if self.encoder.cfg.segment == "both":
            images = self._masked(images, self.segmenter(images, batch.subjects))
        references, index = self._references(batch)
        gen = F.normalize(self.encoder.embed(images), dim=-1)  # (N, D)
        ref = F.normalize(self.encoder.embed(references), dim=-1)  # (R, D)
        cos = gen @ ref.T  # (N, R)
        sims = torch.stack([cos[i, row].mean() for i, row in enumerate(index)])  # (N,)
        return sims * self.encoder.cfg.scale


def subject_embedder(
    cfg: EmbeddingRewardConfig, device: str = "cpu", cache: ModelCache | None = None
) -> Callable[[Sequence[Image.Image], Sequence], np.ndarray]:
    """``embed(crops, masks) -> (N, D)`` L2-normalised subject embeddings: the SynCD identity scorer's
    signature (cgrpo_core/data/scorers.py). With ``cfg.segment != "none"`` the background of each crop
    is mean-filled under its mask first (as DINO-Seg); otherwise the crops are encoded as they are."""
    encoder = load_image_encoder(cfg, device, cache)

    def embed(crops: Sequence[Image.Image], masks: Sequence) -> np.ndarray:
        images = [load_image(c) for c in crops]
        if cfg.segment != "none":
            grids = [
                load_mask(m.resize(im.size) if isinstance(m, Image.Image) else m)
                for m, im in zip(masks, images, strict=True)
            ]
            images = [
                apply_mask(im, m, encoder.fill, cfg.crop_to_mask, cfg.mask_margin)
                for im, m in zip(images, grids, strict=True)
            ]
        return F.normalize(encoder.embed(images), dim=-1).numpy()

    return embed
