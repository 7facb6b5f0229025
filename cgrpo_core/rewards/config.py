"""Configuration of the reward and metric models (paper section 4.1, appendix A.1-A.2, Table 6-7).

:class:`RewardModels` holds one section per named reward (which checkpoint, how images are prepared,
the output scale); :class:`RewardsConfig` picks the two training roles, ``{id: dino_seg, prompt:
hpsv3}`` in the paper; :class:`ScoringConfig` describes one "score this folder" job. Checkpoint folders
are settings (not hashed); model ids, preprocessing and scales determine results and are hashed.

Presets (functions returning whole configs):

- :func:`paper_reward_models`: the paper's training rewards. DINO-Seg = DINOv2 ViT-L/14 on
  segmented subjects (appendix A.1); HPSv3 (Qwen2-VL-7B + reward head); CLIP ViT-B/32 for the CLIP
  ablation rewards (Table 7; the paper does not name that backbone); the LAION aesthetic head on CLIP
  ViT-L/14 (SynCD filtering).
- :func:`released_reward_models`: the authors' released trainer: DINOv2-base CLS cosine x 100 against
  a pre-segmented reference; the generated image is not segmented (reference/NOTES.md).
- :func:`dreambench_metric_models`: the DreamBench evaluation protocol of the authors' release and of
  DreamBooth: DINO v1 ViT-S/16 (``facebook/dino-vits16``), CLIP ViT-B/32 for CLIP-I and CLIP-T, images
  resized to 256 and centre-cropped to 224 (bilinear, as torchvision's default ``Resize``), HPSv3.
- :func:`table7_rewards`: the reward pairs of Table 7 (DINO + CLIP-T, CLIP-I + CLIP-T, three VLM judges).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cgrpo_core.schema import NOT_HASHED, Frozen, Profile

__all__ = [
    "AestheticConfig",
    "EmbeddingRewardConfig",
    "HPSv3Config",
    "RewardModels",
    "RewardName",
    "RewardsConfig",
    "ScoringConfig",
    "SegmenterConfig",
    "VLMJudgeConfig",
    "dreambench_metric_models",
    "paper_reward_models",
    "released_reward_models",
    "table7_rewards",
    "used_sections",
]

# = registry.REWARDS (a test checks it)
RewardName = Literal[
    "dino", "dino_seg", "clip_i", "clip_t", "hpsv3", "aesthetic", "vlm_judge_id", "vlm_judge_prompt"
]
Family = Literal["dinov2", "dinov2_reg", "dino_v1", "clip"]  # = embeddings.BACKBONES
SegmenterKind = Literal["segformer", "detector_sam"]  # = segmentation.SEGMENTERS
Dtype = Literal["float32", "bfloat16", "float16"]

IMAGENET_CROP_FRACTION = 224 / 256  # DreamBench protocol: resize 256, centre-crop 224


class EmbeddingRewardConfig(Frozen):
    """A cosine-similarity reward on one embedding model: DINO, DINO-Seg, CLIP-I or CLIP-T."""

    family: Family = Field(
        description="Backbone class: dinov2 (Dinov2Model), dinov2_reg (Dinov2WithRegistersModel), dino_v1 "
        "(ViTModel), clip (CLIPModel)."
    )
    model_id: str = Field(description="Hub id of the checkpoint (also names what to download).")
    local_dir: str | None = Field(
        None,
        description="Folder holding the checkpoint (save_pretrained layout); None: the hub cache.",
        json_schema_extra=NOT_HASHED,
    )
    image_prep: Literal["processor", "resize_crop"] = Field(
        "processor",
        description="processor: the checkpoint's own image processor; resize_crop: shorter side to "
        "crop/crop_fraction, centre-crop to the model's input size, then its mean/std.",
    )
    crop_fraction: float = Field(
        IMAGENET_CROP_FRACTION,
        gt=0,
        le=1,
        description="resize_crop only: crop / resize (224/256 in DreamBench).",
    )
    interpolation: Literal["bilinear", "bicubic"] = Field(
        "bilinear", description="resize_crop only: resampling filter (torchvision Resize default: bilinear)."
    )
    scale: float = Field(1.0, gt=0, description="Multiplier of the cosine (released training reward: 100).")
    segment: Literal["none", "both", "reference"] = Field(
        "none",
        description="Mask the subject in: none (DINO), both (DINO-Seg), the reference only (released).",
    )
    crop_to_mask: bool = Field(True, description="Crop a square around the mask before encoding (DINO-Seg).")
    mask_margin: float = Field(
        0.1,
        ge=0,
        description="Margin around the mask's box per side, as a share of its longer side (0.1 keeps "
        "the subject whole through a later 224/256 centre crop, which trims 6.25% per side).",
    )
    batch_size: int = Field(32, ge=1, description="Images per forward pass.", json_schema_extra=NOT_HASHED)


class SegmenterConfig(Frozen):
    """How DINO-Seg finds the subject: detector + SAM (paper) or a small Segformer (toy)."""

    kind: SegmenterKind = Field(
        "detector_sam", description="detector_sam (paper) or segformer (toy profile)."
    )
    detector_id: str = Field(
        "google/owlv2-base-patch16-ensemble", description="Open-vocabulary detector (OWLv2)."
    )
    detector_dir: str | None = Field(None, description="Local detector folder.", json_schema_extra=NOT_HASHED)
    sam_id: str = Field("facebook/sam-vit-base", description="SAM checkpoint that turns the box into a mask.")
    sam_dir: str | None = Field(None, description="Local SAM folder.", json_schema_extra=NOT_HASHED)
    box_threshold: float = Field(0.1, ge=0, le=1, description="Minimum detector score (OWLv2 default 0.1).")
    query_template: str = Field(
        "a photo of a {subject}", description="Detector text query per subject class."
    )
    segformer_id: str = Field(
        "toy/segformer-subject", description="Segformer checkpoint (subject vs background)."
    )
    segformer_dir: str | None = Field(
        None, description="Local Segformer folder.", json_schema_extra=NOT_HASHED
    )
    subject_label: int = Field(1, ge=0, description="Segformer class index of the subject.")
    batch_size: int = Field(8, ge=1, description="Images per forward pass.", json_schema_extra=NOT_HASHED)


class AestheticConfig(Frozen):
    """LAION aesthetic predictor: nn.Linear(768, 1) on L2-normalised CLIP ViT-L/14 image embeddings."""

    clip_id: str = Field("openai/clip-vit-large-patch14", description="CLIP backbone of the head.")
    clip_dir: str | None = Field(None, description="Local CLIP folder.", json_schema_extra=NOT_HASHED)
    head_url: str = Field(
        "https://github.com/LAION-AI/aesthetic-predictor/raw/main/sa_0_4_vit_l_14_linear.pth",
        description="Where the head is published (names what to download).",
    )
    head_file: str = Field("sa_0_4_vit_l_14_linear.pth", description="Head file name (a torch state dict).")
    head_dir: str | None = Field(
        None, description="Folder holding the head file.", json_schema_extra=NOT_HASHED
    )
    batch_size: int = Field(32, ge=1, description="Images per forward pass.", json_schema_extra=NOT_HASHED)


class HPSv3Config(Frozen):
    """HPSv3 (Ma et al. 2025): Qwen2-VL-7B-Instruct + a reward head on the <|Reward|> token; score = mu."""

    base_id: str = Field("Qwen/Qwen2-VL-7B-Instruct", description="Base model: its config and processor.")
    base_dir: str | None = Field(None, description="Local base-model folder.", json_schema_extra=NOT_HASHED)
    checkpoint_id: str = Field("MizzenAI/HPSv3", description="Hub repo of the released reward weights.")
    checkpoint_file: str = Field(
        "HPSv3.safetensors", description="Weights file (full state dict, with rm_head)."
    )
    checkpoint_dir: str | None = Field(
        None, description="Folder holding the file.", json_schema_extra=NOT_HASHED
    )
    image_pixels: int = Field(
        256 * 28 * 28,
        ge=4 * 28 * 28,
        description="Pixels per image after resizing (HPSv3: min = max = 256*28*28).",
    )
    dtype: Dtype = Field("bfloat16", description="Backbone dtype (HPSv3: bf16; the head is always fp32).")
    batch_size: int = Field(4, ge=1, description="Images per forward pass.", json_schema_extra=NOT_HASHED)


class VLMJudgeConfig(Frozen):
    """An OpenAI-compatible chat-completions judge (Table 6-7: Qwen-VL-Max, GPT-4o, Gemini-2.5-Pro).

    The endpoint and key come from the environment only (never from a config or an artifact).
    """

    model: str | None = Field(None, description="Model name; None: read from $<model_env>.")
    model_env: str = Field(
        "CGRPO_VLM_MODEL", description="Env var naming the model.", json_schema_extra=NOT_HASHED
    )
    base_url_env: str = Field(
        "CGRPO_VLM_BASE_URL",
        description="Env var with the API base URL (…/v1).",
        json_schema_extra=NOT_HASHED,
    )
    api_key_env: str = Field(
        "CGRPO_VLM_API_KEY",
        description="Env var with the API key (optional for a local server).",
        json_schema_extra=NOT_HASHED,
    )
    score_min: float = Field(0.0, description="Lowest valid score the judge is asked for.")
    score_max: float = Field(10.0, description="Highest valid score the judge is asked for.")
    temperature: float = Field(
        0.0, ge=0, description="Sampling temperature (0: as deterministic as the API allows)."
    )
    max_tokens: int = Field(32, ge=1, description="Answer length limit.")
    image_max_side: int = Field(512, ge=16, description="Images are downscaled to this side before sending.")
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout.", json_schema_extra=NOT_HASHED)
    max_attempts: int = Field(
        4, ge=1, description="Attempts per image before failing.", json_schema_extra=NOT_HASHED
    )
    backoff_s: float = Field(
        2.0, ge=0, description="First retry delay; doubles each time.", json_schema_extra=NOT_HASHED
    )
    max_concurrency: int = Field(
        4, ge=1, description="Requests in flight at once.", json_schema_extra=NOT_HASHED
    )
    cache_dir: str | None = Field(
        None,
        description="Answer cache folder; None: <workspace>/cache/vlm_judge.",
        json_schema_extra=NOT_HASHED,
    )

    @model_validator(mode="after")
    def _check(self) -> VLMJudgeConfig:
        if self.score_min >= self.score_max:
            raise ValueError(f"vlm.score_min ({self.score_min}) must be < vlm.score_max ({self.score_max})")
        return self


def _dinov2(model_id: str, **kw) -> EmbeddingRewardConfig:
    return EmbeddingRewardConfig(family="dinov2", model_id=model_id, **kw)


class RewardModels(Frozen):
    """Settings of every named reward (defaults: the paper's training rewards, appendix A.1)."""

    dino: EmbeddingRewardConfig = _dinov2("facebook/dinov2-large")
    dino_seg: EmbeddingRewardConfig = _dinov2("facebook/dinov2-large", segment="both")
    clip_i: EmbeddingRewardConfig = EmbeddingRewardConfig(
        family="clip", model_id="openai/clip-vit-base-patch32"
    )
    clip_t: EmbeddingRewardConfig = EmbeddingRewardConfig(
        family="clip", model_id="openai/clip-vit-base-patch32"
    )
    aesthetic: AestheticConfig = AestheticConfig()
    hpsv3: HPSv3Config = HPSv3Config()
    segmenter: SegmenterConfig = SegmenterConfig()
    vlm: VLMJudgeConfig = VLMJudgeConfig()

    @model_validator(mode="after")
    def _check(self) -> RewardModels:
        if self.clip_t.family != "clip":
            raise ValueError(f"clip_t needs a CLIP model (family 'clip'), got family {self.clip_t.family!r}")
        if self.clip_t.segment != "none":
            raise ValueError("clip_t compares an image with text: set clip_t.segment to 'none'")
        return self


# The RewardModels sections each reward reads (everything else does not change its numbers).
SECTIONS: dict[str, tuple[str, ...]] = {
    "dino": ("dino",),
    "dino_seg": ("dino_seg", "segmenter"),
    "clip_i": ("clip_i",),
    "clip_t": ("clip_t",),
    "hpsv3": ("hpsv3",),
    "aesthetic": ("aesthetic",),
    "vlm_judge_id": ("vlm",),
    "vlm_judge_prompt": ("vlm",),
}


def used_sections(models: RewardModels, names: tuple[str, ...] | list[str]) -> RewardModels:
    """``models`` with the sections no reward in ``names`` reads reset to their defaults, so that a
    result's hash depends only on the settings that produced it."""
    keep = {section for name in names for section in SECTIONS[name]}
    default = RewardModels()
    return RewardModels(
        **{f: getattr(models if f in keep else default, f) for f in RewardModels.model_fields}
    )


IDENTITY_REWARDS = ("dino_seg", "dino", "clip_i", "vlm_judge_id")
PROMPT_REWARDS = ("hpsv3", "clip_t", "vlm_judge_prompt")


class RewardsConfig(Frozen):
    """The two training rewards by role (section 3): identity and prompt following."""

    id: RewardName = Field("dino_seg", description="Identity reward (paper: DINO-Seg).")
    prompt: RewardName = Field("hpsv3", description="Prompt-following reward (paper: HPSv3).")
    models: RewardModels = RewardModels()

    @model_validator(mode="after")
    def _check(self) -> RewardsConfig:
        if self.id not in IDENTITY_REWARDS:
            raise ValueError(
                f"rewards.id must compare with the reference: one of {IDENTITY_REWARDS}, got {self.id!r}"
            )
        if self.prompt not in PROMPT_REWARDS:
            raise ValueError(
                f"rewards.prompt must read the prompt: one of {PROMPT_REWARDS}, got {self.prompt!r}"
            )
        return self


class ScoringConfig(Frozen):
    """One scoring job: these metrics on a folder of images (evaluation, data filtering, Table 6)."""

    name: str = Field("scoring", description="Run name.", json_schema_extra=NOT_HASHED)
    profile: Profile = Field("toy", description="A label for the MLflow run.", json_schema_extra=NOT_HASHED)
    metrics: tuple[RewardName, ...] = Field(
        ("dino", "clip_i", "clip_t"), min_length=1, description="What to score."
    )
    models: RewardModels = RewardModels()
    chunk_size: int = Field(
        64, ge=1, description="Manifest rows loaded at once.", json_schema_extra=NOT_HASHED
    )
    device: str = Field("cpu", description="Torch device for the models.", json_schema_extra=NOT_HASHED)


# ---------------------------------------------------------------------------------------------------
# Presets


def paper_reward_models() -> RewardModels:
    """The paper's rewards (appendix A.1): DINO-Seg on DINOv2 ViT-L/14 + OWLv2/SAM, HPSv3."""
    return RewardModels()


def released_reward_models() -> RewardModels:
    """The authors' released trainer: DINOv2-base CLS cosine x 100 against a pre-segmented reference."""
    return RewardModels(dino_seg=_dinov2("facebook/dinov2-base", scale=100.0, segment="reference"))


def dreambench_metric_models() -> RewardModels:
    """DreamBench metrics as in DreamBooth and the authors' release: DINO v1 ViT-S/16, CLIP ViT-B/32,
    resize 256 + centre-crop 224; image similarities averaged over every reference of the subject."""
    protocol = {
        "image_prep": "resize_crop",
        "crop_fraction": IMAGENET_CROP_FRACTION,
        "interpolation": "bilinear",
    }
    clip = EmbeddingRewardConfig(family="clip", model_id="openai/clip-vit-base-patch32", **protocol)
    return RewardModels(
        dino=EmbeddingRewardConfig(family="dino_v1", model_id="facebook/dino-vits16", **protocol),
        clip_i=clip,
        clip_t=clip,
    )


def table7_rewards() -> dict[str, RewardsConfig]:
    """The reward combinations of Table 7 by row label (VLM rows judge both roles; model names are the
    providers' API names for the paper's Qwen-VL-Max, GPT-4o-0816 and Gemini-2.5-Pro)."""
    judges = {"Qwen-VL-Max": "qwen-vl-max", "GPT-4o": "gpt-4o-2024-08-06", "Gemini-2.5-Pro": "gemini-2.5-pro"}
    rows = {
        "DINO, CLIP-T": RewardsConfig(id="dino", prompt="clip_t"),
        "CLIP-I, CLIP-T": RewardsConfig(id="clip_i", prompt="clip_t"),
    }
    for label, model in judges.items():
        models = RewardModels(vlm=VLMJudgeConfig(model=model))
        rows[label] = RewardsConfig(id="vlm_judge_id", prompt="vlm_judge_prompt", models=models)
    rows["DINO-Seg, HPS-v3"] = RewardsConfig()
    return rows
