"""Configuration of the toy zoo's reward side: the tiny reward and metric models trained on the toy world.

Every model is of the real class and saved in the real format (cgrpo_core/toy/zoo/rewards/build.py):

- ``dinov2``: ``Dinov2Model`` trained contrastively so that views of one subject embed close; it fills
  ``dino_seg`` (masked subject crops) and the SynCD identity scorer (square subject crops);
- ``dino_v1``: a DINO v1 ``ViTModel`` (no pooler) trained the same way on whole images; it fills ``dino``
  (the DreamBench DINO metric of the authors' release and of DreamBooth);
- ``clip``: ``CLIPModel`` trained with CLIP's contrastive loss on toy images and captions (CLIP-I, CLIP-T);
- ``aesthetic``: the LAION-format ``nn.Linear(P, 1)`` head on L2-normalised toy-CLIP image embeddings,
  regressed to a LAION-like scale (clean renders ``clean_score``, degraded ones ``degraded_score``);
- ``segmenter``: the two-class Segformer of DINO-Seg (rewards' ``fit_segformer``);
- ``hpsv3``: a tiny Qwen2-VL HPSv3 (reward head on <|Reward|>) trained with a pairwise ranking loss.

The defaults (the toy profile's) keep all of them within 5 minutes on 2 CPU cores at the default toy world
(benchmarks/bench_zoo_rewards.py); the test profile shrinks them (cgrpo_core/config.py, ``PROFILES``) to
train in seconds on a small world. Sizes, steps and
learning rates are toy choices (the real models are pretrained at scale), measured, not cited.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from cgrpo_core.rewards.config import HPSv3Config
from cgrpo_core.schema import HASHED_WHEN_SET, NOT_HASHED, Frozen

__all__ = [
    "hpsv3_config",
    "AestheticTrainConfig",
    "ClipTrainConfig",
    "CorpusConfig",
    "DegradationConfig",
    "DinoTrainConfig",
    "HPSv3TrainConfig",
    "HPSv3VisionConfig",
    "RewardChecksConfig",
    "SegmenterTrainConfig",
    "VISION_TARGETS",
    "ZooRewardsConfig",
]


def _check_vit_sizes(cfg: DinoTrainConfig | ClipTrainConfig) -> None:
    """Patches must tile the image and heads must split the width (both ViT towers)."""
    if cfg.image_size % cfg.patch_size:
        raise ValueError(f"image_size {cfg.image_size} must be a multiple of patch_size {cfg.patch_size}")
    if cfg.hidden % cfg.heads:
        raise ValueError(f"hidden {cfg.hidden} must be a multiple of heads {cfg.heads}")


class DegradationConfig(Frozen):
    """How a "degraded render" is made wherever a model learns quality (CLIP captions, the aesthetic head,
    HPSv3 negatives): the toy world's own ``render.degrade`` (blur, blocking or washed-out contrast, plus
    Gaussian noise of a std drawn in [noise_min, noise_max], a share of the 0-255 range)."""

    noise_min: float = Field(0.06, ge=0, description="Smallest noise std (planted bad sets: 0.08).")
    noise_max: float = Field(0.16, ge=0, description="Largest noise std (planted bad sets: 0.14).")

    @model_validator(mode="after")
    def _check(self) -> DegradationConfig:
        if self.noise_min > self.noise_max:
            raise ValueError(
                f"degradation noise_min ({self.noise_min}) must be <= noise_max ({self.noise_max})"
            )
        return self


class DinoTrainConfig(Frozen):
    """A tiny DINO backbone trained with a multi-view InfoNCE loss (positives: views of one SynCD set)."""

    image_size: int = Field(48, ge=16, description="Model input side (the processor resizes/crops to it).")
    patch_size: int = Field(8, ge=2, description="ViT patch side.")
    hidden: int = Field(64, ge=8, description="Transformer width.")
    layers: int = Field(4, ge=1, description="Transformer blocks.")
    heads: int = Field(4, ge=1, description="Attention heads.")
    steps: int = Field(300, ge=1, description="Optimiser steps.")
    sets_per_batch: int = Field(64, ge=2, description="SynCD sets per step (two views each).")
    learning_rate: float = Field(1e-3, gt=0, description="AdamW peak learning rate (cosine decay).")
    weight_decay: float = Field(0.05, ge=0, description="AdamW weight decay.")
    warmup_steps: int = Field(25, ge=0, description="Linear warm-up steps.")
    temperature: float = Field(0.1, gt=0, description="InfoNCE temperature.")
    positive_cap: float = Field(
        0.85,
        gt=0,
        le=1,
        description="Cosine at which a positive pair is best (above it the pair is pushed apart again): "
        "views of one subject settle around it, below the filter's near-duplicate bound (0.98), while "
        "pixel copies, which no loss can separate, stay at ~1.",
    )
    inputs: tuple[str, ...] = Field(
        ("masked",),
        min_length=1,
        description="What the model is trained on, = what its reward feeds it (dino.DINO_INPUTS): masked "
        "(subject on the mean colour, square crop: DINO-Seg), crop (square subject crop), full (whole "
        "image).",
    )
    swap_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of pairs that are one view twice, its subject pasted on two backgrounds drawn by "
        "the toy world's painters and cut by the toy segmenter (dino.background_twins), pulled to cosine 1: "
        "DINO-Seg learns to ignore the background and the segmenter's errors (0: none).",
    )
    self_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of positive pairs that are two augmentations of one image (DINO v1's own "
        "self-distillation objective: the whole scene, background included, embeds alike) instead of two "
        "views of one set (the subject across scenes, what DINO-Seg must match).",
    )
    min_scale: float = Field(0.8, gt=0, le=1, description="Smallest random zoom of an augmented view.")
    max_shift: float = Field(0.1, ge=0, description="Largest random shift, share of the image side.")
    seed: int = Field(0, description="Seed of initialisation, batches and augmentations.")

    @model_validator(mode="after")
    def _check(self) -> DinoTrainConfig:
        _check_vit_sizes(self)
        return self


class ClipTrainConfig(Frozen):
    """A tiny CLIP trained with CLIP's symmetric contrastive loss on toy SynCD images and captions."""

    image_size: int = Field(
        64, ge=16, description="Vision input side (64 = the toy world's: blur and blocking stay visible)."
    )
    patch_size: int = Field(8, ge=2, description="Vision patch side.")
    hidden: int = Field(64, ge=8, description="Width of both towers.")
    layers: int = Field(2, ge=1, description="Blocks of both towers.")
    heads: int = Field(4, ge=1, description="Attention heads of both towers.")
    projection: int = Field(64, ge=4, description="Joint embedding size (CLIP-I/T and the aesthetic head).")
    vocab_size: int = Field(
        1000, ge=300, description="Tokenizer vocabulary (toy captions + DreamBench prompts)."
    )
    steps: int = Field(800, ge=1, description="Optimiser steps.")
    batch_size: int = Field(128, ge=2, description="Image-caption pairs per step.")
    learning_rate: float = Field(1e-3, gt=0, description="AdamW peak learning rate (cosine decay).")
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay.")
    warmup_steps: int = Field(25, ge=0, description="Linear warm-up steps.")
    degraded_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of each batch that is the degraded twin of a clean view in the same batch (noise "
        "plus blur, blocking or washed-out contrast), captioned so ('a blurry noisy photo of ...'): the "
        "twins "
        "are each other's hardest negatives, so the image embedding carries quality as web-trained CLIP's "
        "does (the aesthetic head reads it).",
    )
    variant_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of clean pairs captioned by a shorter caption that is still true (without the "
        "position or the companion, the subject alone, the class in the scene; clip.caption_variants).",
    )
    seed: int = Field(0, description="Seed of initialisation, batches and degradations.")

    @model_validator(mode="after")
    def _check(self) -> ClipTrainConfig:
        _check_vit_sizes(self)
        return self


class AestheticTrainConfig(Frozen):
    """The LAION-format linear head, regressed on frozen toy-CLIP embeddings of clean and degraded renders."""

    clean_score: float = Field(7.0, description="Target of a clean render (LAION scale: good photos ~6-7).")
    degraded_score: float = Field(3.0, description="Target of a degraded render (LAION scale: poor ~2-4).")
    copies: int = Field(1, ge=1, description="Degraded copies per training image.")
    steps: int = Field(400, ge=1, description="Full-batch AdamW steps of the regression.")
    learning_rate: float = Field(0.05, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay.")
    seed: int = Field(0, description="Seed of the degradations and the head's initialisation.")


class SegmenterTrainConfig(Frozen):
    """The two-class subject Segformer of DINO-Seg (toy profile), trained on the toy SynCD masks."""

    image_size: int = Field(64, ge=16, description="Processor input side.")
    hidden: tuple[int, int] = Field(
        (32, 64),
        description="Widths of the two encoder stages (ToyBench mask IoU: 0.69 at (16, 32) x 1000 steps, "
        "0.76 at (32, 64) x 2000).",
    )
    steps: int = Field(2000, ge=1, description="Optimiser steps.")
    batch_size: int = Field(16, ge=1, description="Images per step.")
    learning_rate: float = Field(3e-3, gt=0, description="AdamW learning rate.")
    seed: int = Field(0, description="Seed of initialisation and batches.")


VISION_TARGETS = ("degraded", "scene", "accessory", "property")  # labels of the toy HPSv3's vision phase


class HPSv3VisionConfig(Frozen):
    """The toy HPSv3's optional vision phase (hpsv3_training.train_vision): the vision tower alone, with a
    linear head per label of ``targets`` on its mean merged token, on direct labels at a constant rate,
    then frozen (``freeze``) while the language model and head learn preferences: the toy stand-in for
    Qwen2-VL's pretrained tower. These defaults are the setting measured in docs/zoo.md."""

    steps: int = Field(800, ge=1, description="Vision-phase steps.")
    targets: tuple[str, ...] = Field(
        ("degraded", "scene"),
        description=f"Labels, of {VISION_TARGETS}: clean or degraded copy, and the scene, accessory and "
        "property a render's DreamBench template asks for.",
    )
    batch: int = Field(64, ge=2, description="Images per step.")
    freeze: bool = Field(True, description="Keep the tower as the phase left it while the rest trains.")

    @model_validator(mode="after")
    def _check(self) -> HPSv3VisionConfig:
        if not self.targets or set(self.targets) - set(VISION_TARGETS):
            raise ValueError(f"hpsv3 vision targets must be some of {VISION_TARGETS}, got {self.targets}")
        return self


class HPSv3TrainConfig(Frozen):
    """A tiny HPSv3 (Qwen2-VL + reward head) trained with a Bradley-Terry loss on preference boxes.

    A box is two (image, prompt) items a and b with different prompts, each image scored under both prompts:
    for each prompt its own image wins (within prompt: prompt following), for each image its own prompt
    wins (within image: a prompt cannot score high whatever the image, which bounds per-prompt offsets by
    the matched gap), and the clean image wins over its degraded copy (quality). Items come from two
    pools: renders of the toy SynCD's subjects as DreamBench prompts ask ("a dog wearing a red hat"; toy
    world re-planned from world.json, ToyBench held out) and the toy SynCD + corpus views with their
    SynCD-style captions; a and b show one subject (another template, another view of the set) or two.
    """

    hidden: int = Field(64, ge=16, description="Language-model width.")
    layers: int = Field(3, ge=1, description="Language-model blocks.")
    heads: int = Field(4, ge=1, description="Attention heads (one key/value head).")
    vision_depth: int = Field(2, ge=1, description="Vision-tower blocks.")
    vision_dim: int = Field(32, ge=8, description="Vision-tower width.")
    image_pixels: int = Field(
        16 * 28 * 28, ge=4 * 28 * 28, description="Pixels per image (HPSv3: 256*28*28; here 112 x 112)."
    )
    vocab_size: int = Field(
        3000, ge=400, description="Tokenizer vocabulary (HPSv3's instruction + toy captions + DreamBench)."
    )
    short_steps: int = Field(
        600,
        ge=0,
        description="Steps on the short form first: HPSv3's input without the ~470 fixed instruction tokens "
        "but every other token at its real rotary position (hpsv3.short_inputs). A tiny model learns to "
        "match image and prompt there at ~1/6 of the cost per step and carries it over to the real input.",
    )
    steps: int = Field(40, ge=1, description="Steps on HPSv3's real input (after the short ones).")
    vision: HPSv3VisionConfig | None = Field(
        None,
        description="A vision phase before the rest (HPSv3VisionConfig); None: none, as before the option.",
        json_schema_extra=HASHED_WHEN_SET,
    )
    boxes_per_step: int = Field(
        8,
        ge=1,
        description="Preference boxes per step: 4 sequences and 4 preferences each, +1 of each with the "
        "degraded copy (quality_share).",
    )
    mix: tuple[float, float, float, float] = Field(
        (0.5, 0.1, 0.3, 0.1),
        description="Shares of the boxes' kinds: DreamBench-prompt renders of one subject (two templates) "
        "and of two subjects, toy SynCD views of one set (two captions) and of two sets. A kind without "
        "items (no renders) passes its share to the others.",
    )
    quality_share: float = Field(
        0.5, ge=0, le=1, description="Share of boxes with the degraded copy of an image under its prompt."
    )
    templates_per_subject: tuple[int, int] = Field(
        (4, 10),
        description="DreamBench templates drawn uniformly per toy SynCD subject, for object classes and for "
        "live ones (dogs, cats: only they have accessory prompts, and only ~2 in 15 subjects are live), "
        "one render each; (0, 0): no renders. A one-subject box pairs two of a subject's renders.",
    )
    subject_change_templates: tuple[int, int] = Field(
        (0, 0),
        description="Of templates_per_subject, how many are drawn from the prompts that change the subject "
        "itself (property; accessory, live classes only), for object and live classes; the rest uniformly. "
        "A one-subject box of two such renders differs in the subject alone, which CLIP-T and the toy "
        "HPSv3 find hardest (benchmarks/prompt_reward_rivals.py). (0, 0): the uniform draw. Tried (2, 6), "
        "seeds 0 and 1: no better on accessorisation or property, worse on recontextualisation and SynCD "
        "(docs/zoo.md).",
    )
    render_corpus: bool = Field(
        False, description="Render the corpus world's subjects too (else the training world's only)."
    )
    caption_weight: float = Field(
        1.0,
        ge=0,
        description="Weight of the captioning loss added to Bradley-Terry: next-token cross-entropy of the "
        "prompt on the sequences that show an image with its own prompt (the base VLM's own objective; "
        "HPSv3 starts from a pretrained Qwen2-VL, the toy one from scratch). 0: Bradley-Terry alone.",
    )
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    learning_rate: float = Field(
        2e-3,
        gt=0,
        description="AdamW peak learning rate (warm-up + cosine decay, restarted per phase). At 5e-4 the toy "
        "model learnt image quality only (prompt / scene pairwise accuracy 0.54 / 0.49 on held-out views); "
        "at 2e-3 with 3 blocks: 0.71 / 0.71 (benchmarks/bench_zoo.py).",
    )
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    warmup_steps: int = Field(50, ge=0, description="Linear warm-up steps.")
    score_offset: float = Field(
        6.0, description="Bias added to the head's mu at initialisation (HPSv3 scores sit around 4-9)."
    )
    seed: int = Field(0, description="Seed of initialisation, renders, boxes and degradations.")

    @model_validator(mode="after")
    def _check(self) -> HPSv3TrainConfig:
        if self.hidden % self.heads or (self.hidden // self.heads) % 16:
            raise ValueError(
                f"hpsv3 hidden / heads must be a multiple of 16 (Qwen2-VL splits a head's rotary "
                f"frequencies 2:3:3 over time, height, width); got {self.hidden} / {self.heads}"
            )
        if min(self.mix) < 0 or sum(self.mix) <= 0:
            raise ValueError(f"hpsv3 mix must be non-negative shares, got {self.mix}")
        if min(self.templates_per_subject + self.subject_change_templates) < 0:
            raise ValueError(
                f"hpsv3 templates_per_subject and subject_change_templates must be counts >= 0, got "
                f"{self.templates_per_subject}, {self.subject_change_templates}"
            )
        return self


class CorpusConfig(Frozen):
    """The toy "web": a second toy SynCD, generated with another seed, that the caption-reading models
    (CLIP, HPSv3) learn from beside the world's own toy SynCD. Real CLIP and HPSv3 learn from millions of
    pairs; on the 300 sets of one toy world alone a tiny CLIP memorises its captions. With this corpus the
    toy CLIP's CLIP-T top-1 of 16 on held-out views is 0.81 (benchmarks/bench_zoo.py)."""

    seed: int = Field(
        2_000_003, description="Seed of the corpus world (not the training world's nor the check world's)."
    )
    sets: int = Field(600, ge=0, description="SynCD sets of the corpus world (0: no corpus).")


class RewardChecksConfig(Frozen):
    """Held-out ground truth for the checks: ToyBench (never trained on) and a second toy world."""

    world_seed: int = Field(
        1_000_003, description="Seed of the check world (any seed other than the training world's)."
    )
    world_sets: int = Field(64, ge=4, description="SynCD sets of the check world.")
    caption_batch: int = Field(16, ge=2, description="Captions per CLIP-T top-1 batch (acceptance: 16).")
    swap_subjects: int = Field(30, ge=1, description="Subjects rendered on two backgrounds (DINO-Seg check).")
    seed: int = Field(0, description="Seed of the check draws (negatives, degradations, views).")


class ZooRewardsConfig(Frozen):
    """Every reward model of the toy zoo and the checks run on them."""

    dinov2: DinoTrainConfig = DinoTrainConfig(inputs=("masked", "segmented"), swap_share=0.75, steps=400)
    dino_v1: DinoTrainConfig = DinoTrainConfig(inputs=("full",), self_share=0.5, seed=1)
    clip: ClipTrainConfig = ClipTrainConfig()
    aesthetic: AestheticTrainConfig = AestheticTrainConfig()
    segmenter: SegmenterTrainConfig = SegmenterTrainConfig()
    hpsv3: HPSv3TrainConfig = HPSv3TrainConfig()
    degradation: DegradationConfig = DegradationConfig()
    corpus: CorpusConfig = CorpusConfig()
    checks: RewardChecksConfig = RewardChecksConfig()
    threads: int = Field(
        2,
        ge=1,
        description="torch threads while training (2-core budget); a setting, but float sums may differ in "
        "the last bits between thread counts.",
        json_schema_extra=NOT_HASHED,
    )

    @model_validator(mode="after")
    def _check(self) -> ZooRewardsConfig:
        if self.corpus.seed == self.checks.world_seed:
            raise ValueError(
                f"corpus.seed and checks.world_seed are both {self.corpus.seed}: "
                "the checks need held-out data"
            )
        return self


def hpsv3_config(folder: str | Path, image_pixels: int, model_id: str = "toy/hpsv3") -> HPSv3Config:
    """The rewards' config reading a toy HPSv3 in ``folder`` (base/ + HPSv3.safetensors), in float32."""
    folder = Path(folder)
    return HPSv3Config(
        base_id=f"{model_id}-base",
        base_dir=str(folder / "base"),
        checkpoint_id=model_id,
        checkpoint_dir=str(folder),
        image_pixels=image_pixels,
        dtype="float32",
    )
