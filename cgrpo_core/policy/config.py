"""Configuration of the policy (UNO on FLUX.1-dev with a trainable LoRA) and of its tiny test twin.

:class:`PolicyConfig` says which weights to load, in which dtype, how the reference image enters the
sequence (UnoPE) and what LoRA is trained on top. Sampler settings (steps, shift, eta, guidance,
resolution) are not here: they live in :class:`cgrpo_core.config.SamplerConfig`.

:class:`TinyPolicyConfig` gives the sizes of the tiny checkpoint that
:func:`cgrpo_core.policy.loading.build_tiny_checkpoint` writes in the real FLUX.1-dev folder layout (toy
profile, tests). The toy model zoo chooses these sizes; the defaults are the 0.47 M-parameter
transformer measured in ECOSYSTEM.md.

Values not stated in the paper cite the authors' released trainer (``train/train_customized_grpo.py``)
or UNO's release (``uno/flux/util.py``, ``uno/flux/sampling.py``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cgrpo_core.config import NOT_HASHED, Frozen

__all__ = ["LoraTarget", "PolicyConfig", "TinyPolicyConfig", "UnoPE"]

UnoPE = Literal["diagonal", "height", "width", "none"]  # UNO's pe modes d, h, w, o
LoraTarget = Literal["attention", "mlp"]  # = lora.TARGET_GROUPS


class PolicyConfig(Frozen):
    """Which FLUX/UNO weights, in which dtype, with which reference positions and which trained LoRA."""

    base_model: str = Field(
        "black-forest-labs/FLUX.1-dev",
        description="Hub id of the base model (paper: FLUX.1-dev); names the weights, so it is hashed.",
    )
    model_folder: str | None = Field(
        None,
        description="Local folder laid out like the hub repo of base_model (model_index.json, transformer/, "
        "vae/, text_encoder/, text_encoder_2/, tokenizer/, tokenizer_2/, scheduler/); None: the hub cache.",
        json_schema_extra=NOT_HASHED,
    )
    uno_lora: str | None = Field(
        "bytedance-research/UNO",
        description="Hub repo of UNO's dit_lora.safetensors, fused into the base before training (the "
        "released trainer starts from FLUX merged with UNO); None: no UNO LoRA (tiny models train whole).",
    )
    uno_lora_file: str | None = Field(
        None,
        description="Local path of UNO's dit_lora.safetensors; None: the hub cache of uno_lora.",
        json_schema_extra=NOT_HASHED,
    )
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "bfloat16", description="Weights dtype of transformer and text encoders (released: bf16 autocast)."
    )
    vae_dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="VAE dtype (UNO encodes references in float32)."
    )
    lora_rank: int = Field(512, ge=0, description="Rank of the trained LoRA (released: 512); 0: no LoRA.")
    lora_alpha: float | None = Field(
        None, gt=0, description="LoRA alpha; None: equal to the rank, i.e. scale 1 as in UNO's LoRA layers."
    )
    lora_seed: int = Field(0, description="Seed of the LoRA's random init (A ~ N(0, 1/rank), B = 0).")
    lora_targets: tuple[LoraTarget, ...] = Field(
        ("attention",),
        description="Module groups with LoRA: attention (UNO: qkv + out projections of every block, incl. "
        "the single blocks' fused out projection) and optionally mlp (the feed-forward layers).",
    )
    unope: UnoPE = Field(
        "diagonal",
        description="Reference position offset (UNO pe d/h/w/o): diagonal shifts both row and column ids "
        "past the target grid (UNO default), height/width only one axis, none shares the target's ids.",
    )
    reference_size: int | None = Field(
        None,
        ge=16,
        description="Long side of a reference in pixels; None: the sampler resolution (UNO: 512 for one "
        "reference at 512 px, 320 for several).",
    )
    allow_empty_prompt: bool = Field(
        False, description="Accept an empty prompt (unconditional generation); else it is an error."
    )
    clip_max_length: int | None = Field(
        None, ge=1, description="CLIP token length; None: the tokenizer's model_max_length (FLUX: 77)."
    )
    t5_max_length: int | None = Field(
        None, ge=1, description="T5 token length, padded; None: the tokenizer's model_max_length (FLUX: 512)."
    )
    gradient_checkpointing: bool = Field(
        True,
        description="Recompute each block's activations in the backward (released: on; at 512 px it cuts "
        "activations from ~16 to ~1.3 GiB per sample, docs/policy.md); off is ~40% faster on the toy model.",
        json_schema_extra=NOT_HASHED,
    )

    @model_validator(mode="after")
    def _check(self) -> PolicyConfig:
        if self.lora_rank > 0 and not self.lora_targets:
            raise ValueError(
                "policy.lora_targets is empty: name at least one group (attention, mlp) or set rank 0"
            )
        if len(set(self.lora_targets)) != len(self.lora_targets):
            raise ValueError(f"policy.lora_targets has duplicates: {self.lora_targets}")
        return self

    @property
    def effective_lora_alpha(self) -> float:
        """The effective alpha (alpha / rank is the LoRA scale)."""
        return float(self.lora_alpha if self.lora_alpha is not None else self.lora_rank)


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
