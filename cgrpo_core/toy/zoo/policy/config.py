"""Configuration of the toy zoo's generator side: the toy VAE and the toy UNO-style base policy.

Both are trained in-project on the toy SynCD (cgrpo_core/toy/zoo/policy/vae.py, base_policy.py) and saved
in the FLUX.1-dev folder layout, so the real loader (:func:`cgrpo_core.policy.load_policy`) reads them.
Sizes are a :class:`~cgrpo_core.toy.tiny.config.TinyPolicyConfig`; the defaults (the toy profile's) keep both
trainings within 8 minutes on 2 CPU cores (benchmarks/bench_zoo.py); the test profile shrinks them
(cgrpo_core/config.py, ``PROFILES``) to train in seconds on the tests' small world.

Values the papers state are cited: UNO's released trainer (``train.py``: AdamW, weight decay 0.01, grad
clip 1.0, sigma = FLUX's shifted schedule at a uniformly drawn index, MSE on ``noise - x0``) and FLUX's
VAE (shift/scale derived from latent statistics: 0.1159 / 0.3611). The rest are toy choices, measured.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cgrpo_core.schema import Frozen
from cgrpo_core.toy.tiny.config import TinyPolicyConfig

__all__ = ["BasePolicyTrainConfig", "SigmaSampling", "VaeTrainConfig", "ZooPolicyConfig"]

SigmaSampling = Literal["shifted_uniform", "logit_normal"]  # = base_policy.SIGMA_SAMPLERS


class VaeTrainConfig(Frozen):
    """Training of the toy AutoencoderKL on every toy SynCD image (never ToyBench's)."""

    steps: int = Field(2000, ge=1, description="Optimiser steps.")
    batch_size: int = Field(
        8, ge=1, description="Images per step (small batches, many steps: the best PSNR per CPU second)."
    )
    learning_rate: float = Field(3e-3, gt=0, description="AdamW peak learning rate (cosine decay to 0).")
    warmup_steps: int = Field(20, ge=0, description="Linear learning-rate warm-up steps.")
    kl_weight: float = Field(
        1e-4,
        ge=0,
        description="Weight of the posterior's KL to N(0, I) (per latent element, against the per-pixel "
        "reconstruction loss); small, as in the SD/FLUX VAEs: it bounds the posterior noise, not the scale "
        "(the scale is normalised afterwards by scaling/shift factors).",
    )
    edge_weight: float = Field(
        0.5,
        ge=0,
        description="Weight of the L1 loss on horizontal/vertical pixel differences: a perceptual-free edge "
        "term that keeps the toy world's crisp outlines and patterns sharp (no LPIPS: nothing to download).",
    )
    flip: bool = Field(True, description="Random horizontal flips (the VAE is translation/mirror agnostic).")


class BasePolicyTrainConfig(Frozen):
    """Flow-matching pretraining of the whole tiny FLUX transformer on toy SynCD pairs (UNO's recipe)."""

    steps: int = Field(1300, ge=1, description="Optimiser steps.")
    batch_size: int = Field(64, ge=1, description="(reference, caption, target) pairs per step.")
    learning_rate: float = Field(
        2e-3, gt=0, description="AdamW peak learning rate (cosine decay to 0; a tiny model trained whole)."
    )
    warmup_steps: int = Field(50, ge=0, description="Linear learning-rate warm-up steps.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (UNO train.py: 0.01).")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm (UNO train.py: 1.0).")
    sigma_sampling: SigmaSampling = Field(
        "shifted_uniform",
        description="Noise-level distribution: shifted_uniform (UNO: the shifted schedule at a uniform "
        "index) or logit_normal (SD3: sigmoid of a normal, then shifted).",
    )
    sigma_shift: float = Field(
        3.0, gt=0, description="Time shift applied to the drawn sigma (the sampler's shift: released 3)."
    )
    guidance: float = Field(
        3.5,
        ge=0,
        description="FLUX guidance embedding during training: the sampler's value (released 3.5), as the "
        "toy model is never guidance-distilled; UNO trains at 1 and samples at 4.",
    )
    ema_decay: float | None = Field(
        0.995,
        ge=0,
        lt=1,
        description="Decay of the exponential moving average of the weights that is saved (UNO: optional); "
        "None saves the last weights.",
    )


class ZooPolicyConfig(Frozen):
    """The toy VAE and base policy: sizes, trainings and the seed of everything."""

    seed: int = Field(0, description="Seed of data order, noise, sigmas and the architectures' init.")
    tiny: TinyPolicyConfig = Field(
        TinyPolicyConfig(t5_max_length=32),
        description="Sizes; T5 padded to 32 tokens so the longest toy caption (25 T5 tokens) is never cut.",
    )
    vae: VaeTrainConfig = VaeTrainConfig()
    policy: BasePolicyTrainConfig = BasePolicyTrainConfig()

    @model_validator(mode="after")
    def _check(self) -> ZooPolicyConfig:
        if self.tiny.seed != self.seed:
            raise ValueError(
                f"zoo seed {self.seed} differs from tiny.seed {self.tiny.seed}: set both (the seed fixes "
                "the architectures' init too)"
            )
        return self
