"""The evaluation protocol, written out: what every results table and MLflow run states beside its numbers.

The paper's numbers come from one protocol (appendix A.2, DreamBooth's convention, the authors' release):
each of DreamBench's 750 (subject, prompt) items, 4 images from fixed per-image seeds, DINO v1 ViT-S/16
for DINO, CLIP ViT-B/32 for CLIP-I and CLIP-T, every image resized to 256 and centre-cropped to 224, image
similarities averaged over all of the subject's photos, HPSv3 on the prompt. :func:`protocol` writes what a
run used, so that two tables that differ in any of it say so; :func:`metric_models` names the model behind
each metric ("toy HPSv3" in the toy profile, where a zoo model stands in).
"""

from __future__ import annotations

from typing import Any

from cgrpo_core.policy.config import SamplerConfig
from cgrpo_core.rewards.config import SECTIONS, EmbeddingRewardConfig, RewardModels

__all__ = ["metric_models", "protocol"]

TOY_PREFIX = "toy-zoo/"
TOY_NAMES = {"dino_v1": "DINO v1", "dinov2": "DINOv2", "clip": "CLIP", "hpsv3": "HPSv3"}


def _model_id(models: RewardModels, name: str) -> str:
    section = getattr(models, SECTIONS[name][0])
    if isinstance(section, EmbeddingRewardConfig):
        return section.model_id
    if name == "hpsv3":
        return section.checkpoint_id
    if name.startswith("vlm_judge"):
        return section.model
    return getattr(section, "model_id", name)


def metric_models(models: RewardModels, names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``{metric: the model that scores it}``: a hub id, or "toy <model>" for a toy-zoo stand-in."""
    out = {}
    for name in names:
        ident = _model_id(models, name)
        if ident.startswith(TOY_PREFIX):
            ident = f"toy {TOY_NAMES.get(ident.rsplit('/', 1)[-1], ident.rsplit('/', 1)[-1])}"
        out[name] = ident
    return out


def _preprocessing(models: RewardModels, name: str) -> str:
    section = getattr(models, SECTIONS[name][0])
    if not isinstance(section, EmbeddingRewardConfig):
        return "the model's own processor"
    if section.image_prep == "resize_crop":
        size = round(224 / section.crop_fraction)
        fraction, interpolation = section.crop_fraction, section.interpolation
        return f"shorter side to input / {fraction:.4g} (224 px: {size}), centre-crop ({interpolation})"
    return "the checkpoint's image processor"


def protocol(
    benchmark: str,
    sampler: SamplerConfig,
    seed: int,
    images_per_item: int,
    items: int,
    subjects: int,
    references_per_subject: tuple[int, int],
    models: RewardModels,
    names: tuple[str, ...] | list[str],
) -> dict[str, Any]:
    """Everything that fixes a table's numbers besides the model, as flat ``{key: value}`` (MLflow params)."""
    low, high = references_per_subject
    out: dict[str, Any] = {
        "benchmark": benchmark,
        "items": items,
        "subjects": subjects,
        "images_per_item": images_per_item,
        "images": items * images_per_item,
        "image_size": sampler.resolution,
        "sampler": f"Euler ODE, {sampler.num_steps} steps, shift {sampler.shift:g}, "
        f"guidance {sampler.guidance:g}",
        "noise": f"per image: sha256(seed {seed}, subject, prompt, index); the same for every model",
        "references": f"image similarity averaged over all of the subject's photos "
        f"({low}-{high} per subject)",
    }
    for name, model in metric_models(models, names).items():
        out[f"metric.{name}"] = f"{model}; {_preprocessing(models, name)}"
    return out
