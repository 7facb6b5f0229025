"""The held-out check a training run makes every ``run.heldout_every`` steps.

Fixed benchmark items (``run.heldout_prompts_per_subject`` evenly spaced prompts of every ToyBench or
DreamBench subject, or of ``run.heldout_subjects`` evenly spaced subjects; never trained on),
``run.heldout_samples`` ODE samples each from per-image noise that depends only on ``run.heldout_seed``
and the item (the same at every check and for every row), scored by the two trained rewards and by the
evaluation metrics that are not trained on (DINO, CLIP-I, CLIP-T, HPSv3). A reward that rises while the
independent metrics fall (reward hacking) shows as diverging curves while the run goes on. Sampling and
scoring use no global RNG, so a check never changes training.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from cgrpo_core.evaluation.generation import BenchItem, generate_samples
from cgrpo_core.policy.config import SamplerConfig
from cgrpo_core.policy.loading import Policy
from cgrpo_core.rewards.base import RewardBatch
from cgrpo_core.rewards.registry import RewardSet

__all__ = ["UNTRAINED_METRICS", "heldout_metrics"]

UNTRAINED_METRICS = ("dino", "clip_i", "clip_t", "hpsv3")  # the DreamBench metrics (appendix A.2)


def heldout_metrics(
    policy: Policy,
    items: Sequence[BenchItem],
    sampler: SamplerConfig,
    samples: int,
    seed: int,
    scorers: Sequence[tuple[RewardSet, Sequence[str]]],
) -> dict[str, float]:
    """``{"heldout/<name>": mean over items and samples}`` for each ``(reward set, names)`` in
    ``scorers`` (the training rewards, then the metrics; a name scored by both keeps the first)."""
    was_training = policy.transformer.training
    policy.transformer.eval()
    try:
        images = generate_samples(policy, items, sampler, samples, seed)
    finally:
        policy.transformer.train(was_training)
    flat = [image for per_item in images for image in per_item]
    refs = [[Image.open(item.reference).convert("RGB")] for item in items for _ in range(samples)]
    batch = RewardBatch(
        flat,
        references=refs,
        prompts=[item.prompt for item in items for _ in range(samples)],
        subjects=[item.class_name for item in items for _ in range(samples)],
    )
    out: dict[str, float] = {}
    for rewards, names in scorers:
        todo = [n for n in names if f"heldout/{n}" not in out]
        for name, values in rewards.score(todo, batch).items():
            out[f"heldout/{name}"] = float(torch.as_tensor(values).float().mean())
    return out
