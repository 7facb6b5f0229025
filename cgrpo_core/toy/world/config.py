"""Size and make-up of the procedurally generated toy world (toy SynCD + ToyBench)."""

from __future__ import annotations

from pydantic import Field, model_validator

from cgrpo_core.schema import NOT_HASHED, Frozen

__all__ = ["ToyWorldConfig"]


class ToyWorldConfig(Frozen):
    """Size and make-up of the procedurally generated toy world (toy SynCD + ToyBench)."""

    seed: int = Field(0, description="Seed of every random choice of the world.")
    resolution: int = Field(64, ge=32, description="Image side in pixels (toy profile: 64).")
    supersample: int = Field(
        4, ge=1, le=8, description="Rasterisation oversampling per side (anti-aliasing)."
    )
    syncd_sets: int = Field(300, ge=1, description="Sets in the toy SynCD.")
    two_view_share: float = Field(
        0.1, ge=0, le=1, description="Share of sets with 2 views (else 3; SynCD: 2-3)."
    )
    edit_share: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Share of good sets whose last view is a property change or an accessory (DreamBench's "
        "competing prompt kinds); that view is only ever a target, never a reference.",
    )
    drift_share: float = Field(
        0.07, ge=0, le=1, description="Share of sets with identity drift (planted bad)."
    )
    duplicate_share: float = Field(
        0.06, ge=0, le=1, description="Share of near-duplicate sets (planted bad)."
    )
    low_quality_share: float = Field(
        0.07, ge=0, le=1, description="Share of noisy/degraded sets (planted bad)."
    )
    companion_share: float = Field(0.3, ge=0, le=1, description="Share of views with a companion object.")
    describe_share: float = Field(
        0.5, ge=0, le=1, description="Share of view prompts naming the full identity (else the class only)."
    )
    bench_images: int = Field(5, ge=1, description="Images per ToyBench subject (DreamBench: 4-6).")
    workers: int = Field(1, ge=1, description="Processes rendering sets.", json_schema_extra=NOT_HASHED)

    @model_validator(mode="after")
    def _check(self) -> ToyWorldConfig:
        bad = self.drift_share + self.duplicate_share + self.low_quality_share
        if bad > 1:
            raise ValueError(f"toy world: planted bad shares sum to {bad:.2f} > 1; lower them")
        return self
