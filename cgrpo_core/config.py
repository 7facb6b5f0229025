"""Typed, frozen experiment configuration and its content hash.

One :class:`ExperimentConfig` fully describes one experiment. It is built from small sub-models, each
with ``extra="forbid"`` (a misspelt field is an error, not a silent default) and a description per
field. Values that the paper does not state carry the source they come from (usually the authors'
released code, reference/NOTES.md).

:func:`config_hash` is the identity of a result: a sha256 over the canonical JSON of the fields that
determine it, plus the hashes of its inputs. Fields marked ``hashed=False`` (names, profiles as labels,
output folders, logging options) are left out, so renaming a run never recomputes it. The same string
names the artifact directory, the Prefect cache key and the MLflow ``config_hash`` tag.

Profiles (``paper``, ``toy``, ``test``) change only sizes, step counts and weight locations
(:data:`PROFILE_OVERRIDES`); a test checks that they touch nothing else.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "AdvantageConfig",
    "AnalysisConfig",
    "ExperimentConfig",
    "GRPOConfig",
    "PROFILE_OVERRIDES",
    "Profile",
    "SamplerConfig",
    "TDWConfig",
    "config_hash",
    "flatten",
    "override",
    "paper_default",
    "released_code",
    "with_profile",
]

Profile = Literal["paper", "toy", "test"]
AdvantageMethod = Literal["linear", "sars", "min", "max", "harmonic"]  # = advantages.AGGREGATORS
ScheduleName = Literal["paper", "released", "inverted", "static"]  # = schedules.SCHEDULES

NOT_HASHED: dict[str, Any] = {"hashed": False}
HASH_LENGTH = 16  # hex characters kept: 64 bits, collision-free for any realistic number of results


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class SamplerConfig(Frozen):
    """How images are sampled: shared by GRPO rollouts (SDE) and evaluation (ODE)."""

    num_steps: int = Field(25, ge=1, description="Sampling steps T (appendix A: 25).")
    shift: float = Field(3.0, gt=0, description="Time shift of the sigma schedule (released code: 3).")
    eta: float = Field(0.4, ge=0, description="SDE noise scale for GRPO rollouts (released code: 0.4).")
    guidance: float = Field(3.5, ge=0, description="FLUX guidance embedding value (released code: 3.5).")
    resolution: int = Field(512, ge=8, description="Image side in pixels (released code: 512).")


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
    """Per-step reward weights (Eq. 12, Tables 4-5); see cgrpo_core/schedules.py."""

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
        description="w_prompt in the identity phase of the 'released' schedule (released: 0.5).",
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
    kl_coef: float = Field(0.0, ge=0, description="KL penalty weight; 0 as in the paper (section 3).")
    timestep_fraction: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Share of sampling steps trained per rollout (paper: all; released: 0.6).",
    )
    learning_rate: float = Field(
        1e-5, gt=0, description="AdamW learning rate (appendix A: 1e-5; released: 2e-5)."
    )
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay (appendix A: 1e-4).")
    max_steps: int = Field(1250, ge=1, description="Optimiser steps (appendix A: 1250).")
    grad_accum: int = Field(1, ge=1, description="Gradient accumulation (not in the paper; released: 4).")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm (released code: 1.0).")
    advantage: AdvantageConfig = AdvantageConfig()
    tdw: TDWConfig = TDWConfig()


class ExperimentConfig(Frozen):
    """One experiment: everything that determines its result, plus labels that do not."""

    name: str = Field("customized-grpo", description="Human-readable run name.", json_schema_extra=NOT_HASHED)
    profile: Profile = Field(
        "paper", description="paper, toy or test (a label).", json_schema_extra=NOT_HASHED
    )
    seed: int = Field(0, description="Seed of every random choice of the experiment.")
    sampler: SamplerConfig = SamplerConfig()
    grpo: GRPOConfig = GRPOConfig()


class AnalysisConfig(Frozen):
    """The analysis figures (paper Fig. 3, 6, 7): pure functions of these values and of the reward samples."""

    name: str = Field("analysis", description="Run name.", json_schema_extra=NOT_HASHED)
    profile: Profile = Field("toy", description="A label for the MLflow run.", json_schema_extra=NOT_HASHED)
    seed: int = Field(0, description="Seed of the synthetic reward samples (used when none are given).")
    num_steps: int = Field(25, ge=1, description="Sampling steps T for the TDW curves (Fig. 6).")
    advantage: AdvantageConfig = AdvantageConfig()
    tdw: TDWConfig = TDWConfig()
    cross_section_a_prompt: float = Field(1.0, description="A_prompt held fixed in Fig. 3.")
    cross_section_w_id: float = Field(0.5, ge=0, le=1, description="w_id of Fig. 3 (w_prompt = 1 - w_id).")
    synthetic_groups: int = Field(
        300, ge=1, description="Groups of synthetic rewards (appendix B.2 used 300)."
    )
    synthetic_group_size: int = Field(
        12, ge=2, description="Group size of synthetic rewards (appendix B.2: 12)."
    )
    synthetic_correlation: float = Field(
        0.0, ge=-1, le=1, description="Correlation of the synthetic rewards (0: ~50% conflict, as in B.2)."
    )


# ---------------------------------------------------------------------------------------------------
# Hashing


def _hashable(value: Any) -> Any:
    """Canonical JSON-able form: models without their unhashed fields, sorted keys, floats checked."""
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        return {
            name: _hashable(getattr(value, name))
            for name, info in fields.items()
            if not (
                isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("hashed") is False
            )
        }
    if isinstance(value, Mapping):
        return {str(k): _hashable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_hashable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"cannot hash a non-finite float ({value}); fix the config value")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)  # Paths, enums


def config_hash(cfg: BaseModel, inputs: Mapping[str, str] | None = None) -> str:
    """Stable content hash of the result-determining fields of ``cfg`` plus its inputs' hashes.

    Unchanged by field order and by unhashed fields (names, labels, output locations); changed by any
    other field, by the config's type and by any input hash. Returns ``HASH_LENGTH`` hex characters.
    """
    payload = {
        "type": type(cfg).__name__,
        "config": _hashable(cfg),
        "inputs": dict(sorted((inputs or {}).items())),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def flatten(cfg: BaseModel | Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"grpo.tdw.w_max": 0.7, ...}``: every leaf field with a dotted path (MLflow params)."""
    data = cfg.model_dump() if isinstance(cfg, BaseModel) else cfg
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, prefix=f"{path}."))
        else:
            out[path] = value
    return out


# ---------------------------------------------------------------------------------------------------
# Overrides, presets and profiles


def override(cfg: BaseModel, changes: Mapping[str, Any]):
    """A validated copy of ``cfg`` with dotted-path changes, e.g. ``{"grpo.tdw.schedule": "static"}``.

    Unknown paths are an error that lists the valid ones at that level.
    """
    data = cfg.model_dump()
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            if part not in node or not isinstance(node[part], dict):
                raise ValueError(f"unknown config path {path!r}: no section {part!r} (have {sorted(node)})")
            node = node[part]
        if leaf not in node:
            raise ValueError(f"unknown config path {path!r}: no field {leaf!r} (have {sorted(node)})")
        node[leaf] = value
    return type(cfg).model_validate(data)


# What each profile changes: sizes, step counts and weight locations only.
PROFILE_OVERRIDES: dict[str, dict[str, Any]] = {
    "paper": {},
    "toy": {
        "sampler.num_steps": 10,
        "sampler.resolution": 64,
        "grpo.max_steps": 200,
    },
    "test": {
        "sampler.num_steps": 4,
        "sampler.resolution": 32,
        "grpo.group_size": 4,
        "grpo.max_steps": 2,
    },
}


def with_profile(cfg: ExperimentConfig, profile: Profile) -> ExperimentConfig:
    """``cfg`` at the sizes of ``profile`` (paper, toy, test)."""
    if profile not in PROFILE_OVERRIDES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILE_OVERRIDES)}")
    return override(cfg, {**PROFILE_OVERRIDES[profile], "profile": profile})


def paper_default(profile: Profile = "paper") -> ExperimentConfig:
    """Customized-GRPO as the paper describes it (appendix A): SARS alpha 0.5, TDW 0.7/0.3, lr 1e-5."""
    return with_profile(ExperimentConfig(name="customized-grpo"), profile)


def released_code(profile: Profile = "paper") -> ExperimentConfig:
    """Customized-GRPO as the authors' released code runs it (reference/NOTES.md)."""
    cfg = paper_default(profile)
    return override(
        cfg,
        {
            "name": "customized-grpo-released",
            "grpo.advantage.alpha": 0.4,  # config `gamma`
            "grpo.tdw.schedule": "released",  # identity phase w_prompt = 0.5
            "grpo.learning_rate": 2e-5,
            "grpo.timestep_fraction": 0.6,  # 14 of the 24 trained transitions
            "grpo.grad_accum": 4,
        },
    )
