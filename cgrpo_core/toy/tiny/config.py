"""Sizes of the tiny FLUX/UNO checkpoint (:mod:`cgrpo_core.toy.tiny.policy`); the toy zoo chooses them.

The defaults are the 0.47 M-parameter transformer measured in ECOSYSTEM.md; every field names the
FLUX.1-dev value it shrinks.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from cgrpo_core.schema import Frozen

__all__ = ["TinyPolicyConfig"]


class TinyPolicyConfig(Frozen):
    """Sizes of a tiny FLUX/UNO checkpoint of the real classes (random init; the toy zoo trains it)."""

    seed: int = Field(0, description="Seed of the random initialisation.")
    num_layers: int = Field(2, ge=1, description="Double-stream blocks (FLUX.1-dev: 19).")
    num_single_layers: int = Field(2, ge=1, description="Single-stream blocks (FLUX.1-dev: 38).")
    num_attention_heads: int = Field(4, ge=1, description="Attention heads (FLUX.1-dev: 24).")
    attention_head_dim: int = Field(16, ge=4, description="Head dimension (FLUX.1-dev: 128).")
    axes_dims_rope: tuple[int, int, int] = Field(
        (4, 6, 6), description="Rotary dims per id axis, summing to the head dim (FLUX.1-dev: 16, 56, 56)."
    )
    latent_channels: int = Field(16, ge=1, description="VAE latent channels (FLUX.1-dev: 16).")
    vae_block_out_channels: tuple[int, ...] = Field(
        (16, 16, 32),
        description="VAE channels per level; n levels downsample 2**(n-1)x (FLUX.1-dev: 128..512: 8x).",
    )
    vae_norm_num_groups: int = Field(8, ge=1, description="GroupNorm groups of the VAE (FLUX.1-dev: 32).")
    vae_layers_per_block: int = Field(1, ge=1, description="ResNet layers per VAE level (FLUX.1-dev: 2).")
    clip_hidden_size: int = Field(
        32, ge=8, description="CLIP text width = pooled projection dim (FLUX: 768)."
    )
    clip_layers: int = Field(2, ge=1, description="CLIP text layers (FLUX: 12).")
    clip_heads: int = Field(2, ge=1, description="CLIP text heads (FLUX: 12).")
    clip_vocab_size: int = Field(1000, ge=600, description="CLIP BPE vocabulary (bytes + merges).")
    clip_max_length: int = Field(77, ge=2, description="CLIP tokenizer length and positions (FLUX: 77).")
    t5_d_model: int = Field(32, ge=8, description="T5 width = joint attention dim (FLUX: 4096).")
    t5_layers: int = Field(2, ge=1, description="T5 encoder layers (FLUX: 24).")
    t5_heads: int = Field(2, ge=1, description="T5 heads (FLUX: 64).")
    t5_vocab_size: int = Field(800, ge=200, description="T5 Unigram vocabulary (words + characters).")
    t5_max_length: int = Field(
        16, ge=2, description="T5 tokenizer model_max_length = padded length (FLUX: 512)."
    )

    @model_validator(mode="after")
    def _check(self) -> TinyPolicyConfig:
        if sum(self.axes_dims_rope) != self.attention_head_dim:
            raise ValueError(
                f"axes_dims_rope {self.axes_dims_rope} must sum to attention_head_dim "
                f"{self.attention_head_dim}"
            )
        if any(d % 2 for d in self.axes_dims_rope):
            raise ValueError(f"every rotary axis dim must be even, got {self.axes_dims_rope}")
        if any(c % self.vae_norm_num_groups for c in self.vae_block_out_channels):
            raise ValueError(
                f"vae_block_out_channels {self.vae_block_out_channels} must be multiples of "
                f"vae_norm_num_groups {self.vae_norm_num_groups}"
            )
        if self.clip_hidden_size % self.clip_heads or self.t5_d_model % self.t5_heads:
            raise ValueError("clip_hidden_size and t5_d_model must be divisible by their head counts")
        return self
