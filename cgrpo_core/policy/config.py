"""Configuration of the policy (UNO on FLUX.1-dev with a trainable LoRA) and of its sampler.

:class:`PolicyConfig` says which weights to load, in which dtype, how the reference image enters the
sequence (UnoPE) and what LoRA is trained on top. :class:`SamplerConfig` says how images are sampled
(steps, shift, eta, guidance, resolution, group noise): GRPO rollouts (SDE) and evaluation (ODE) share it.
The tiny checkpoints of the toy profile are built in :mod:`cgrpo_core.toy.tiny`.

Values not stated in the paper cite the authors' released trainer (``train/train_customized_grpo.py``)
or UNO's release (``uno/flux/util.py``, ``uno/flux/sampling.py``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cgrpo_core.schema import NOT_HASHED, Frozen

__all__ = ["LoraTarget", "PolicyConfig", "SamplerConfig", "UnoPE"]

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


class SamplerConfig(Frozen):
    """How images are sampled: shared by GRPO rollouts (SDE) and evaluation (ODE)."""

    num_steps: int = Field(25, ge=1, description="Sampling steps T (appendix A: 25).")
    shift: float = Field(3.0, gt=0, description="Time shift of the sigma schedule (released code: 3).")
    eta: float = Field(0.4, ge=0, description="SDE noise scale for GRPO rollouts (released code: 0.4).")
    guidance: float = Field(3.5, ge=0, description="FLUX guidance embedding value (released code: 3.5).")
    resolution: int = Field(512, ge=8, description="Image side in pixels (released code: 512).")
    same_group_noise: bool = Field(
        False,
        description="Start every member of a GRPO group from one initial noise (released config: "
        "init_same_noise true). False (the paper preset): each member draws its own, so a group is G "
        "independent samples of the policy, pi_old(. | c), as Eq. 7 and Alg. 1 (line 5) write it; with "
        "shared noise the group's spread, which Eq. 8 normalises by, comes from the SDE noise alone.",
    )
