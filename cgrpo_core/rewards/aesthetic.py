"""The LAION aesthetic predictor (used with DINOv2 similarity to filter SynCD, appendix A.1).

Score = ``Linear(D, 1)(e / |e|)`` with e the CLIP ViT-L/14 image embedding (``get_image_features``,
D = 768) of the image prepared by the checkpoint's own CLIP processor (shorter side 224 bicubic,
centre-crop 224), as LAION's ``aesthetic-predictor`` does with OpenAI's CLIP. The head is LAION's file
``sa_0_4_vit_l_14_linear.pth``: a torch state dict ``{"weight": [1, 768], "bias": [1]}``, loaded with
``weights_only=True``. Scores lie roughly in 1-10 (SynCD keeps sets above a threshold).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cgrpo_core.rewards.base import RewardBatch, checkpoint_file
from cgrpo_core.rewards.config import EmbeddingRewardConfig, RewardModels
from cgrpo_core.rewards.embeddings import ImageEncoder, ModelCache, cached, load_image_encoder

__all__ = ["Aesthetic", "aesthetic_scorer", "load_aesthetic", "load_aesthetic_head", "save_aesthetic_head"]


def load_aesthetic_head(path: str | Path, dim: int) -> torch.nn.Linear:
    """``nn.Linear(dim, 1)`` from a LAION-format state dict; a clear error if its shape differs."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if set(state) != {"weight", "bias"} or tuple(state["weight"].shape) != (1, dim):
        shapes = {k: tuple(v.shape) for k, v in state.items()}
        raise ValueError(f"{path} is not a LAION aesthetic head for {dim}-d CLIP embeddings: {shapes}")
    head = torch.nn.Linear(dim, 1)
    head.load_state_dict(state)
    return head.eval()


def save_aesthetic_head(head: torch.nn.Linear, path: str | Path) -> Path:
    """Save a head in LAION's format (``torch.save`` of the Linear's state dict)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in head.state_dict().items()}, path)
    return path


class Aesthetic:
    """Predicted aesthetic score per image [N]; needs nothing beside the images."""

    name = "aesthetic"
    needs: frozenset[str] = frozenset()

    def __init__(self, encoder: ImageEncoder, head: torch.nn.Linear):
        self.encoder, self.head = encoder, head.to(encoder.device)

    def __call__(self, batch: RewardBatch) -> torch.Tensor:
        embeds = F.normalize(self.encoder.embed(list(batch.images)), dim=-1)  # (N, D)
        with torch.no_grad():
            return self.head(embeds.to(self.encoder.device)).squeeze(-1).float().cpu()


def load_aesthetic(models: RewardModels, device: str = "cpu", cache: ModelCache | None = None) -> Aesthetic:
    """The ``aesthetic`` reward (``models.aesthetic``)."""
    cfg = models.aesthetic
    clip = EmbeddingRewardConfig(
        family="clip", model_id=cfg.clip_id, local_dir=cfg.clip_dir, batch_size=cfg.batch_size
    )
    encoder = load_image_encoder(clip, device, cache)
    path = checkpoint_file("LAION aesthetic head", cfg.head_dir, cfg.head_file, url=cfg.head_url)
    head = cached(
        cache,
        ("aesthetic_head", str(path)),
        lambda: load_aesthetic_head(path, encoder.model.config.projection_dim),
    )
    return Aesthetic(encoder, head)


def aesthetic_scorer(
    models: RewardModels, device: str = "cpu", cache: ModelCache | None = None
) -> Callable[[Sequence[Image.Image]], np.ndarray]:
    """``score(images) -> (N,)``: the SynCD aesthetic scorer's signature (cgrpo_core/data/scorers.py)."""
    reward = load_aesthetic(models, device, cache)
    return lambda images: reward(RewardBatch(list(images))).numpy()
