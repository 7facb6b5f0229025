"""The evaluation section of an experiment: which benchmark, how many images, which metric models.

Images are sampled by ODE with the experiment's sampler (steps, shift, guidance, resolution; its eta is
not used) from per-image initial noise that depends only on the evaluation seed and the item, so every
model sees the same noise for the same item (paired comparisons).
"""

from __future__ import annotations

from pydantic import Field

from cgrpo_core.data.config import DreamBenchConfig
from cgrpo_core.rewards.config import RewardModels, dreambench_metric_models
from cgrpo_core.schema import HASHED_WHEN_SET, NOT_HASHED, Frozen

__all__ = ["EvalConfig"]


class EvalConfig(Frozen):
    """DreamBench (or ToyBench) generation and its metrics (appendix A.2)."""

    benchmark: DreamBenchConfig = Field(
        DreamBenchConfig(), description="Where DreamBench lives and how its 750 items are formed."
    )
    metrics: RewardModels = Field(
        dreambench_metric_models(),
        description="Metric models: DINO v1 ViT-S/16 (DINO), CLIP ViT-B/32 (CLIP-I, CLIP-T), resize 256 + "
        "centre-crop 224, HPSv3 (the authors' release and DreamBooth's protocol).",
    )
    seed: int = Field(0, description="Seed of the per-image initial noise (the same for every model).")
    metric_names: tuple[str, ...] = Field(
        ("dino", "clip_i", "clip_t", "hpsv3"),
        min_length=1,
        description="Metrics scored on every image (appendix A.2: DINO, CLIP-I, CLIP-T, HPS-v3).",
    )
    prompts_per_subject: int | None = Field(
        None,
        ge=2,
        le=25,
        description="Evenly spaced prompts per subject (None: all 25, the protocol's 750 items; test sizes).",
    )
    subjects: int | None = Field(
        None,
        ge=2,
        description="Evenly spaced subjects in protocol order (None: all 30, the protocol; test sizes).",
        json_schema_extra=HASHED_WHEN_SET,
    )
    batch_size: int = Field(
        16,
        ge=1,
        description="Images per transformer batch, and per unit of work (generated, then scored, then kept; "
        "a killed run loses at most one). Changing it may move an image by one grey level (CPU kernels "
        "depend on the batch size), so it is hashed.",
    )
    bootstrap: int = Field(1000, ge=100, description="Bootstrap resamples of items for the 95% CIs.")
    processes: int = Field(
        1,
        ge=1,
        description="Processes that share the items (accelerate launch; one per GPU). Every unit of work is "
        "the same whichever process does it.",
        json_schema_extra=NOT_HASHED,
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="Torch threads of the evaluation, which then goes to a process of its own (rows side "
        "by side on a CPU machine; the images do not depend on it); None: in the calling process.",
        json_schema_extra=NOT_HASHED,
    )
