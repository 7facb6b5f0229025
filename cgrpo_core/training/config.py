"""The method sections of an experiment: GRPO (with its advantage and TDW settings), SFT and RPO.

Every field states its source: the paper (appendix A, Eq. 8-12), the authors' released trainer
(reference/NOTES.md), or, where neither says, the method's own paper. Presets that change these values
(``paper_default``, ``released_code`` and the table rows) are dotted overrides in :mod:`cgrpo_core.config`;
the functions that implement an equation take every parameter as a required argument, so a value can only
come from here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cgrpo_core.schema import Frozen

__all__ = [
    "AdvantageConfig",
    "AdvantageMethod",
    "GRPOConfig",
    "RPOConfig",
    "SFTConfig",
    "ScheduleName",
    "TDWConfig",
    "TrainRunConfig",
]

AdvantageMethod = Literal["linear", "sars", "min", "max", "harmonic"]  # = advantages.AGGREGATORS
ScheduleName = Literal["paper", "released", "inverted", "static"]  # = schedules.SCHEDULES


class AdvantageConfig(Frozen):
    """How the identity and prompt advantages become one (Eq. 8-11, Table 3)."""

    method: AdvantageMethod = Field(
        "sars", description="Aggregation: linear (naive GRPO), sars, min, max, harmonic."
    )
    alpha: float = Field(0.5, ge=0, description="Synergy strength (appendix A: 0.5; released config: 0.4).")
    clip: float | None = Field(
        5.0, gt=0, description="Clamp combined advantages to [-clip, clip] (released: 5)."
    )
    std_eps: float = Field(1e-8, gt=0, description="Added to the group std in Eq. 8 (released code: 1e-8).")


class TDWConfig(Frozen):
    """Per-step reward weights (Eq. 12, Tables 4-5); see cgrpo_core/schedules.py.

    The weights are keyed to the sampling step (0 = noisiest), as Eq. 12 and appendix A describe. The
    ``released`` schedule reproduces the released code's weight *function* (its identity-phase value 0.5),
    not what its training run did: there (``training_strategy: all``) the function is called with each
    trained transition's position in a random permutation of the steps, and only the first 14 positions
    are trained, so the release's weights are unrelated to denoising time and 0.5 is never used.
    """

    schedule: ScheduleName = Field("paper", description="paper (Eq. 12), released, inverted, static.")
    w_max: float = Field(0.7, ge=0, le=1, description="Upper bound of w_prompt (appendix A: 0.7).")
    w_min: float = Field(0.3, ge=0, le=1, description="Lower bound of w_prompt (appendix A: 0.3).")
    prompt_phase_end: float = Field(
        6.0, ge=0, description="Prompt-centric phase: step < this (appendix A, T=25)."
    )
    identity_phase_start: float = Field(
        22.0, ge=0, description="Identity phase: step >= this (appendix A, T=25)."
    )
    center: float = Field(10.0, description="Sigmoid centre t_c (not in the paper; released code: 10).")
    slope: float = Field(
        0.8, gt=0, description="Sigmoid slope lambda (not in the paper; released code: 0.8)."
    )
    released_identity_weight: float = Field(
        0.5,
        ge=0,
        le=1,
        description="w_prompt in the identity phase of the 'released' schedule (released: 0.5; the "
        "other schedules do not read it).",
    )

    @model_validator(mode="after")
    def _check(self) -> TDWConfig:
        if self.w_min > self.w_max:
            raise ValueError(f"tdw.w_min ({self.w_min}) must be <= tdw.w_max ({self.w_max})")
        if self.prompt_phase_end > self.identity_phase_start:
            raise ValueError("tdw.prompt_phase_end must be <= tdw.identity_phase_start")
        if self.schedule == "static" and self.w_max != self.w_min:
            raise ValueError(
                "a static schedule uses one constant w_prompt: set tdw.w_max = tdw.w_min = that value "
                f"(got w_max={self.w_max}, w_min={self.w_min}; naive GRPO 1:1 is 0.5, 1:1.5 is 0.6)"
            )
        if self.schedule == "released" and not self.w_min <= self.released_identity_weight <= self.w_max:
            raise ValueError("tdw.released_identity_weight must lie in [w_min, w_max]")
        return self


class GRPOConfig(Frozen):
    """Online GRPO: rollouts, objective and optimiser (section 3, appendix A)."""

    group_size: int = Field(12, ge=2, description="Samples G per (reference, prompt) (appendix A: 12).")
    prompts_per_step: int = Field(
        1, ge=1, description="Prompts B per optimiser step per GPU (appendix A: 1)."
    )
    clip_range: float = Field(1e-4, gt=0, description="Ratio clip epsilon (released code: 1e-4).")
    kl_coef: float = Field(
        0.0,
        ge=0,
        description="Weight of the per-step KL to the base policy (the LoRA off; Flow-GRPO: 0.04); 0 as in "
        "the paper (section 3).",
    )
    timestep_fraction: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Share of the trainable transitions trained per rollout, a random subset (paper: all; "
        "released: 0.6).",
    )
    skip_last_step: bool = Field(
        False,
        description="Leave the last transition (into the final sample) out of training: the released "
        "trainer trains a random int(24 * 0.6) = 14 of its first 24 transitions; the paper trains all T.",
    )
    learning_rate: float = Field(
        1e-5, gt=0, description="AdamW learning rate (appendix A: 1e-5; released: 2e-5)."
    )
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay (appendix A: 1e-4).")
    max_steps: int = Field(1250, ge=1, description="Optimiser steps (appendix A: 1250).")
    inner_epochs: int = Field(
        1,
        ge=1,
        description="Passes over a step's rollouts (neither the paper nor reference/NOTES.md states it).",
    )
    samples_per_update: int | None = Field(
        None,
        ge=1,
        description="Consecutive samples whose losses one optimiser update averages (gradient "
        "accumulation, cgrpo_core/training/grpo.py). None: all B x G samples of the step, one update per "
        "inner epoch (the paper does not say). Released: 4 (gradient accumulation 4 over one-sample "
        "micro-batches: 3 updates per 12-sample group).",
    )
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm (released code: 1.0).")
    advantage: AdvantageConfig = AdvantageConfig()
    tdw: TDWConfig = TDWConfig()


class SFTConfig(Frozen):
    """Supervised fine-tuning of the LoRA by flow matching on the filtered pairs (Table 2 'SFT', Table 8)."""

    batch_size: int = Field(8, ge=1, description="Pairs per optimiser step (Table 8: batch size 8).")
    epochs: int = Field(2, ge=1, description="Passes over the training list (Table 8: 2 epochs).")
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many optimiser steps (None: all the epochs; test sizes)."
    )
    learning_rate: float = Field(
        1e-5, gt=0, description="AdamW learning rate (not stated for SFT; the paper's GRPO value)."
    )
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay (appendix A: 1e-4).")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm (released code: 1.0).")
    warmup_steps: int = Field(0, ge=0, description="Linear learning-rate warm-up steps (UNO: none).")


class RPOConfig(Frozen):
    """RPO (Miao et al. 2024): offline Diffusion-DPO on the base model's scored samples + a similarity loss.

    Appendix A.2: candidates are generated by the frozen base model; winners and losers are told apart by
    RPO's harmonic mean of the identity and prompt rewards.
    """

    candidates: int = Field(4, ge=2, description="Base-model samples per (reference, prompt) to rank.")
    reward_lambda: float = Field(
        0.3,
        ge=0,
        le=1,
        description="lambda of RPO's lambda-Harmonic reward 1 / (lambda / r_id + (1 - lambda) / r_prompt) "
        "that ranks the candidates: the identity reward's weight (RPO, Miao et al. 2024; its release's "
        "reward_lambda default: 0.3, the lambda of its validation reward; its train.py labels pairs with "
        "lambda 0, text alignment alone, which is no harmonic mean, while appendix A.2 ranks by one).",
    )
    candidate_reference: bool = Field(
        False,
        description="Condition the candidates on the pair's reference photo too. False: appendix A.2, the "
        "frozen UNO base generates the candidates 'conditioned solely on text prompts' (as RPO samples its "
        "base model from prompts alone); training always conditions on prompt and reference.",
    )
    beta: float = Field(1.0, gt=0, description="DPO temperature on the error margin (RPO release: 1).")
    sim_weight: float = Field(1.0, ge=0, description="Weight of the similarity loss (RPO release: 1).")
    batch_size: int = Field(8, ge=1, description="Preference pairs per optimiser step.")
    epochs: int = Field(2, ge=1, description="Passes over the preference pairs (as SFT, Table 8).")
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many optimiser steps (None: all the epochs; test sizes)."
    )
    learning_rate: float = Field(1e-5, gt=0, description="AdamW learning rate (the paper's GRPO value).")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay (appendix A: 1e-4).")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm (released code: 1.0).")


class TrainRunConfig(Frozen):
    """How a training run is driven and watched; none of it changes the trained LoRA (not hashed)."""

    checkpoint_every: int = Field(
        50, ge=1, description="Optimiser steps between checkpoints (and after the last step)."
    )
    heldout_every: int = Field(
        50,
        ge=0,
        description="Optimiser steps between held-out checks (0: none); one also runs before the first "
        "step and after the last.",
    )
    heldout_prompts_per_subject: int = Field(
        1, ge=1, le=25, description="Held-out benchmark prompts per subject (evenly spaced)."
    )
    heldout_subjects: int | None = Field(
        None,
        ge=1,
        description="Held-out subjects, evenly spaced in benchmark order (None: every subject; the test "
        "profile checks a few).",
    )
    heldout_samples: int = Field(2, ge=1, description="ODE samples per held-out item.")
    heldout_seed: int = Field(1234, description="Seed of the held-out samples' noise (fixed per item).")
    processes: int = Field(
        1, ge=1, description="Data-parallel processes the train flow launches (torchrun; one per GPU)."
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="Torch threads of the run, which then goes to a process of its own (how "
        "reproduce-paper trains rows side by side on a CPU machine); None: in the calling process.",
    )
