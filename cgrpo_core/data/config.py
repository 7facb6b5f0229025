"""Configuration of the data: DreamBench's evaluation items, and SynCD's scoring and filtering.

Folders (a user's DreamBench or SynCD download, output folders) are settings: they are not hashed; the
content of the files read is hashed by the tasks instead. Thresholds, sizes and seeds are hashed.

Values the paper does not state are marked as ours and explained. The paper (appendix A) says only that
it keeps "10,000 datasets with the highest average DINOv2 similarity and aesthetic scores"; SynCD's loader
(``method/data/data.py``) keeps pairwise DINO scores in ``[filter_dino, 0.98]`` (both bounds inclusive) and
aesthetic scores ``>= filter_aesthetics``; its shipped configs switch both filters off (-1).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cgrpo_core.rewards.config import AestheticConfig, EmbeddingRewardConfig
from cgrpo_core.schema import NOT_HASHED, Frozen

__all__ = ["DataConfig", "DreamBenchConfig", "FilterConfig", "FilterScope", "ScoreConfig"]

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
        "square subject crop: segment 'none'). The toy profile scores with the zoo's DINO-Seg model.",
    )
    aesthetic_model: AestheticConfig = Field(
        AestheticConfig(),
        description="The laion_aesthetic scorer's CLIP and head (LAION's sa_0_4_vit_l_14_linear on OpenAI "
        "CLIP ViT-L/14). The toy profile scores with the zoo's toy CLIP and head.",
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


class DataConfig(Frozen):
    """The training data: a SynCD folder, scored and filtered into the training list (authors' format)."""

    syncd_root: str | None = Field(
        None,
        description="A SynCD download (the folder of per-set sub-folders, docs/data.md); None: the toy "
        "world's toy SynCD.",
        json_schema_extra=NOT_HASHED,
    )
    score: ScoreConfig = ScoreConfig()
    filter: FilterConfig = FilterConfig()
