"""Configuration of the data stage: DreamBench, SynCD scoring and filtering, and the toy world.

Folders (a user's DreamBench or SynCD download, output folders) are settings: they are not hashed; the
content of the files read is hashed by the tasks instead. Thresholds, sizes and seeds are hashed.

Values the paper does not state are marked as ours and explained. The paper (appendix A) says only that
it keeps "10,000 datasets with the highest average DINOv2 similarity and aesthetic scores"; SynCD's loader
(``method/data/data.py``) keeps pairwise DINO scores in ``[filter_dino, 0.98]`` (both bounds inclusive) and
aesthetic scores ``>= filter_aesthetics``; its shipped configs switch both filters off (-1).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from cgrpo_core.config import NOT_HASHED, Frozen, override
from cgrpo_core.rewards.config import AestheticConfig, EmbeddingRewardConfig

__all__ = [
    "DATA_PROFILE_OVERRIDES",
    "DataConfig",
    "DreamBenchConfig",
    "FilterConfig",
    "FilterScope",
    "ScoreConfig",
    "ScorerWeights",
    "ZooPreset",
    "ToyWorldConfig",
    "data_config",
]

FilterScope = Literal["set", "image"]  # = filtering.SCOPES


class DreamBenchConfig(Frozen):
    """Where DreamBench (or ToyBench) lives and how its 750 evaluation items are formed."""

    root: str | None = Field(
        None,
        description="Folder with one sub-folder of images per subject (DreamBench: dreambooth's dataset/); "
        "None: the ToyBench of the generated toy world.",
        json_schema_extra=NOT_HASHED,
    )
    prompts_file: str | None = Field(
        None,
        description="prompts_and_classes.txt; None: the one in root, else the repo's data/dreambench copy.",
        json_schema_extra=NOT_HASHED,
    )
    protocol_file: str | None = Field(
        None,
        description="Single-reference protocol (authors' dreambench_singleip.json format) naming the "
        "reference image of each subject; None: the authors' file (repo copy) for DreamBench, the toy "
        "world's toybench_singleip.json for ToyBench.",
        json_schema_extra=NOT_HASHED,
    )
    live_classes: tuple[str, ...] = Field(
        ("cat", "dog"),
        description="Classes that get the live-subject prompt list (DreamBooth: the cats and dogs).",
    )
    images_per_prompt: int = Field(4, ge=1, description="Images generated per prompt (appendix A: 4).")


ScorerWeights = Literal["configured", "toy_zoo"]
ZooPreset = Literal["toy", "test"]  # = cgrpo_core.zoo.reward_config.ZOO_REWARDS_PRESETS


class ScoreConfig(Frozen):
    """How SynCD sets without scores are scored (SynCD's dataset/cal_scores.py)."""

    identity_scorer: str = Field(
        "embedding",
        description="Embedder of subject crops for the pairwise identity similarity, by name in "
        "data.scorers.SCORERS: embedding (identity_model; SynCD: DINOv2 ViT-L/14 with registers) or the "
        "model-free baseline histogram.",
    )
    aesthetic_scorer: str = Field(
        "laion_aesthetic",
        description="Per-image aesthetic scorer, by name in data.scorers.SCORERS: laion_aesthetic "
        "(aesthetic_model; SynCD: the LAION predictor sa_0_4_vit_l_14_linear on CLIP ViT-L/14) or the "
        "model-free baseline noise.",
    )
    identity_model: EmbeddingRewardConfig = Field(
        EmbeddingRewardConfig(family="dinov2_reg", model_id="facebook/dinov2-with-registers-large"),
        description="The embedding scorer's model (SynCD's cal_scores: torch.hub dinov2_vitl14_reg = "
        "facebook/dinov2-with-registers-large, CLS token, resize 256 + centre-crop 224, on the unmasked "
        "square subject crop: segment 'none'). Replaced by the zoo's DINO-Seg model with weights toy_zoo.",
    )
    aesthetic_model: AestheticConfig = Field(
        AestheticConfig(),
        description="The laion_aesthetic scorer's CLIP and head (LAION's sa_0_4_vit_l_14_linear on OpenAI "
        "CLIP ViT-L/14). Replaced by the zoo's toy CLIP and head with weights toy_zoo.",
    )
    weights: ScorerWeights = Field(
        "configured",
        description="Where identity_model and aesthetic_model come from: configured (their folders or the "
        "hub cache: paper profile) or toy_zoo (the toy reward zoo, trained on the toy world before scoring "
        "and reused by content: toy profile).",
    )
    zoo_preset: ZooPreset = Field(
        "toy", description="With weights toy_zoo: the reward-zoo preset that trains the models (toy, test)."
    )
    mask_threshold: float = Field(
        0.1, ge=0, lt=1, description="Mask value (0-1) counted as subject for the crop (SynCD: 0.1)."
    )
    batch_size: int = Field(32, ge=1, description="Images per scorer call.", json_schema_extra=NOT_HASHED)


class FilterConfig(Frozen):
    """Which scored SynCD sets become training data, and how pairs are drawn from them."""

    dino_min: float = Field(
        0.7,
        description="Lowest pairwise identity similarity kept (inclusive). Not stated in the paper; ours.",
    )
    dino_max: float = Field(
        0.98,
        description="Highest pairwise similarity kept, inclusive (SynCD loader: <= 0.98; above: "
        "near-duplicates).",
    )
    aesthetic_min: float = Field(
        5.0,
        description="Lowest per-image aesthetic score kept (inclusive). Not stated in the paper; ours (LAION "
        "predictor scale 1-10).",
    )
    top_k: int = Field(10_000, ge=1, description="Sets kept after ranking (appendix A: 10,000).")
    pairs_per_set: int = Field(
        1,
        ge=1,
        description="Training pairs drawn per kept set (authors' list: 1, with ref index < target index).",
    )
    scope: FilterScope = Field(
        "set",
        description="set: a set is kept whole only if every pair and every image passes (the paper's "
        "wording); image: SynCD's loader, which drops failing images and keeps a set with >= 2 left.",
    )
    seed: int = Field(0, description="Seed of the pair draw.")

    @model_validator(mode="after")
    def _check(self) -> FilterConfig:
        if self.dino_min > self.dino_max:
            raise ValueError(
                f"filter.dino_min ({self.dino_min}) must be <= filter.dino_max ({self.dino_max})"
            )
        return self


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


class DataConfig(Frozen):
    """The whole data stage."""

    dreambench: DreamBenchConfig = DreamBenchConfig()
    score: ScoreConfig = ScoreConfig()
    filter: FilterConfig = FilterConfig()
    toy_world: ToyWorldConfig = ToyWorldConfig()


# What each profile changes (dotted paths into DataConfig); the lead merges these into the profiles.
DATA_PROFILE_OVERRIDES: dict[str, dict[str, Any]] = {
    "paper": {},
    # The toy profile scores with the toy reward zoo's DINOv2 (DINO-Seg, masked subject crops) and
    # LAION-format aesthetic head, trained on the toy world first; thresholds on their scales and SynCD's
    # image scope, measured on the default toy world (benchmarks/bench_zoo_rewards.py, docs/data.md).
    "toy": {
        "score.weights": "toy_zoo",
        "filter.dino_min": 0.6,
        "filter.aesthetic_min": 5.0,
        "filter.scope": "image",
    },
    # The test profile keeps the model-free baselines (seconds, no zoo to train).
    "test": {
        "score.identity_scorer": "histogram",
        "score.aesthetic_scorer": "noise",
        "filter.dino_min": 0.64,
        "toy_world.resolution": 32,
        "toy_world.supersample": 2,
        "toy_world.syncd_sets": 40,
        "toy_world.bench_images": 2,
    },
}


def data_config(profile: str = "toy") -> DataConfig:
    """The data stage's config at the sizes (and baseline scorers) of ``profile``."""
    if profile not in DATA_PROFILE_OVERRIDES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(DATA_PROFILE_OVERRIDES)}")
    return override(DataConfig(), DATA_PROFILE_OVERRIDES[profile])
