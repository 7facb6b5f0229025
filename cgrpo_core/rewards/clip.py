"""CLIP-I and CLIP-T (Radford et al. 2021; Hessel et al. 2021), as in DreamBench evaluation.

- ``clip_i``: cosine similarity of CLIP image embeddings (``get_image_features``) of the generated image
  and each reference, averaged over the references (embeddings.py).
- ``clip_t``: cosine similarity of the image embedding and the prompt's text embedding
  (``get_text_features`` on the prompt tokenised with the checkpoint's tokenizer, truncated to CLIP's 77
  positions). This is the raw cosine, the scale of DreamBench tables (the paper's CLIP-T is about 0.30),
  not CLIPScore's ``2.5 * max(cos, 0)``.

The DreamBench protocol uses OpenAI CLIP ViT-B/32 with resize 256 + centre-crop 224
(:func:`~cgrpo_core.rewards.config.dreambench_metric_models`); Table 7's CLIP rewards use the same model
(the paper does not name one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import AutoTokenizer

from cgrpo_core.rewards.base import RewardBatch, batched, checkpoint_dir, loading
from cgrpo_core.rewards.config import RewardModels
from cgrpo_core.rewards.embeddings import (
    ImageEncoder,
    ImageSimilarity,
    ModelCache,
    cached,
    load_image_encoder,
)

__all__ = ["ClipText", "load_clip_i", "load_clip_t"]


class ClipText:
    """Image-text cosine similarity times ``scale`` (CLIP-T)."""

    name = "clip_t"
    needs = frozenset({"prompts"})

    def __init__(self, encoder: ImageEncoder, tokenizer):
        self.encoder, self.tokenizer = encoder, tokenizer
        self.max_length = encoder.model.config.text_config.max_position_embeddings

    def embed_text(self, prompts: list[str]) -> torch.Tensor:
        """Projected text embeddings [M, P] (float32, CPU)."""

        def run(chunk: list[str]) -> torch.Tensor:
            tokens = self.tokenizer(
                chunk, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
            return self.encoder.model.get_text_features(**tokens.to(self.encoder.device)).pooler_output

        return batched(run, prompts, self.encoder.cfg.batch_size, desc="clip text embeddings")

    def __call__(self, batch: RewardBatch) -> torch.Tensor:
        """Similarities [N] (float32)."""
        batch.require(self.name, self.needs)
        unique = sorted(set(batch.prompts))
        text = F.normalize(self.embed_text(unique), dim=-1)  # (M, P)
        index = torch.tensor([unique.index(p) for p in batch.prompts])  # (N,)
        image = F.normalize(self.encoder.embed(list(batch.images)), dim=-1)  # (N, P)
        return (image * text[index]).sum(-1) * self.encoder.cfg.scale


def load_clip_i(
    models: RewardModels, device: str = "cpu", cache: ModelCache | None = None
) -> ImageSimilarity:
    """The ``clip_i`` reward (``models.clip_i``)."""
    if models.clip_i.family != "clip" or models.clip_i.segment != "none":
        raise ValueError("clip_i needs family='clip' and segment='none'")
    return ImageSimilarity("clip_i", load_image_encoder(models.clip_i, device, cache))


def load_clip_t(models: RewardModels, device: str = "cpu", cache: ModelCache | None = None) -> ClipText:
    """The ``clip_t`` reward (``models.clip_t``)."""
    cfg = models.clip_t
    path = checkpoint_dir("CLIP tokenizer", cfg.model_id, cfg.local_dir)
    tokenizer = cached(
        cache,
        ("tokenizer", cfg.model_id, cfg.local_dir),
        lambda: loading("CLIP tokenizer", cfg.model_id, lambda: AutoTokenizer.from_pretrained(path)),
    )
    return ClipText(load_image_encoder(cfg, device, cache), tokenizer)
