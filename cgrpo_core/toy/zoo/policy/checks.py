"""Does the base policy do subject-driven generation, imperfectly? Above-chance checks on ToyBench.

Given two reward callables (the roles of the paper's identity and prompt rewards)::

    identity_reward(images: list[PIL], references: list[PIL]) -> [N] floats
    prompt_reward(images: list[PIL], prompts: list[str]) -> [N] floats

:func:`check_rewards` scores a set of samples per ToyBench item against their own reference and against
references of other subjects (chance for identity), and against their true prompt and against prompts of
other items (a derangement: chance for prompt). "Above chance" is a positive margin own - other (true -
shuffled), with its standard error over items (the samples of one item are not independent).

:func:`policy_checks` runs it on the policy's samples and puts two bounds beside them: the reference
image itself as a sample (``copy/``: the identity reward's ceiling, and what copying the reference scores
on the prompt) and the toy world's ground-truth renders of each (subject, prompt) (``truth/``: what a
perfect generator attains; its identity is below the copy's on property and accessory prompts, which is
the competition the paper studies). ``*_relative`` = policy margin / truth margin: above 0 is above
chance, well below 1 leaves room for RL.

Ground truth comes from the world's generator re-planned from ``world.json`` (the same seeded subjects
as ToyBench) and the renderer, never from ``ground_truth.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cgrpo_core.data.dreambench import bench_files, format_prompt
from cgrpo_core.evaluation.generation import BenchItem, benchmark_items, generate_samples
from cgrpo_core.policy import Policy, SamplerConfig
from cgrpo_core.toy.world.config import ToyWorldConfig
from cgrpo_core.toy.world.generate import plan_toybench, sample_view
from cgrpo_core.toy.world.prompts import dreambench_templates, spec_for_template
from cgrpo_core.toy.world.render import render

__all__ = [
    "IdentityReward",
    "PromptReward",
    "check_rewards",
    "derange",
    "ground_truth_renders",
    "policy_checks",
    "toybench_items",
]

IdentityReward = Callable[[Sequence[Image.Image], Sequence[Image.Image]], Sequence[float]]
PromptReward = Callable[[Sequence[Image.Image], Sequence[str]], Sequence[float]]


def toybench_items(world_dir: str | Path, prompts_per_subject: int | None = None) -> list[BenchItem]:
    """ToyBench's items (read like DreamBench); ``prompts_per_subject`` evenly spaced prompts of each."""
    root, prompts_file, protocol = bench_files(None, None, None, toy_world=world_dir)
    return benchmark_items(root, prompts_file, protocol, prompts_per_subject)


def derange(texts: Sequence[str], generator: np.random.Generator) -> list[str]:
    """A shuffle of ``texts`` in which no position keeps an equal text (needs two distinct texts)."""
    if len(set(texts)) < 2:
        raise ValueError("shuffled prompts need at least two distinct prompts")
    out = [texts[k] for k in generator.permutation(len(texts))]
    for i in range(len(out)):
        if out[i] == texts[i]:  # swap with a position where both end up different
            for j in generator.permutation(len(out)):
                if out[j] != texts[i] and out[i] != texts[j]:
                    out[i], out[j] = out[j], out[i]
                    break
    if any(a == b for a, b in zip(out, texts, strict=True)):
        raise ValueError("cannot shuffle the prompts so that every one changes (one prompt dominates)")
    return out


def _rewards(fn: Callable, images: Sequence[Image.Image], others: Sequence) -> np.ndarray:
    values = fn(list(images), list(others))
    values = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if values.shape != (len(images),):
        raise ValueError(f"a reward returned shape {values.shape} for {len(images)} images; expected [N]")
    return values.astype(np.float64)


def _margin_stats(name: str, own: np.ndarray, other: np.ndarray, item_of: np.ndarray) -> dict[str, float]:
    per_item = np.array([(own - other)[item_of == k].mean() for k in np.unique(item_of)])
    se = per_item.std(ddof=1) / np.sqrt(len(per_item)) if len(per_item) > 1 else float("nan")
    return {f"{name}_margin": float(per_item.mean()), f"{name}_margin_se": float(se)}


def check_rewards(
    samples: Sequence[Sequence[Image.Image]],
    items: Sequence[BenchItem],
    identity_reward: IdentityReward,
    prompt_reward: PromptReward,
    seed: int = 0,
    other_references: int = 3,
) -> dict[str, float]:
    """Own vs other subjects' references, true vs shuffled prompts, for ``samples[i]`` of ``items[i]``.

    Returns means ``identity_own``, ``identity_other``, ``prompt_true``, ``prompt_shuffled``, their
    ``*_margin`` and ``*_margin_se`` (over items), and per prompt kind ``identity_own/<kind>`` and
    ``prompt_true/<kind>``. Each sample is compared with ``other_references`` other subjects' references.
    """
    if len(samples) != len(items):
        raise ValueError(f"{len(samples)} sample lists for {len(items)} items")
    subjects = sorted({it.subject for it in items})
    if len(subjects) < 2:
        raise ValueError("identity chance needs items of at least two subjects")
    reference = {it.subject: Image.open(it.reference).convert("RGB") for it in items}
    rng = np.random.default_rng(seed)
    images = [im for group in samples for im in group]
    item_of = np.array([k for k, group in enumerate(samples) for _ in group])
    own_subject = [items[k].subject for k in item_of]
    k_other = min(other_references, len(subjects) - 1)
    others = [rng.choice([s for s in subjects if s != own], k_other, replace=False) for own in own_subject]
    prompts = [items[k].prompt for k in item_of]
    metrics = {
        "identity_own": _rewards(identity_reward, images, [reference[s] for s in own_subject]),
        "identity_other": _rewards(
            identity_reward,
            [im for im in images for _ in range(k_other)],
            [reference[s] for row in others for s in row],
        )
        .reshape(-1, k_other)
        .mean(axis=1),
        "prompt_true": _rewards(prompt_reward, images, prompts),
        "prompt_shuffled": _rewards(prompt_reward, images, derange(prompts, rng)),
    }
    out = {name: float(values.mean()) for name, values in metrics.items()}
    out |= _margin_stats("identity", metrics["identity_own"], metrics["identity_other"], item_of)
    out |= _margin_stats("prompt", metrics["prompt_true"], metrics["prompt_shuffled"], item_of)
    kinds = np.array([items[k].kind for k in item_of])
    for kind in sorted(set(kinds)):
        out[f"identity_own/{kind}"] = float(metrics["identity_own"][kinds == kind].mean())
        out[f"prompt_true/{kind}"] = float(metrics["prompt_true"][kinds == kind].mean())
    return out


def ground_truth_renders(
    world_dir: str | Path, items: Sequence[BenchItem], samples_per_item: int = 4, seed: int = 0
) -> list[list[Image.Image]]:
    """The toy world's renders of each item's subject as its prompt asks (random placements, seeded)."""
    world = json.loads((Path(world_dir) / "world.json").read_text(encoding="utf-8"))
    cfg = ToyWorldConfig(**world["config"])
    table = dreambench_templates()
    subjects = dict(plan_toybench(cfg, table))
    out = []
    for k, item in enumerate(items):
        subject = subjects[item.subject]
        templates = table.live_templates if item.live else table.object_templates
        template = templates[item.prompt_index]
        if format_prompt(template, subject.class_name) != item.prompt:
            raise ValueError(
                f"item {item.subject!r} prompt {item.prompt!r} does not match the world's template "
                f"{template!r}: the items come from another toy world than {world_dir}"
            )
        spec = spec_for_template(template)
        rng = np.random.default_rng([seed, k])
        views = [
            replace(sample_view(rng, subject, spec.context), accessory=spec.accessory, prop=spec.prop)
            for _ in range(samples_per_item)
        ]
        out.append([Image.fromarray(render(subject, v, cfg.resolution, cfg.supersample)[0]) for v in views])
    return out


def policy_checks(
    policy: Policy,
    items: Sequence[BenchItem],
    identity_reward: IdentityReward,
    prompt_reward: PromptReward,
    settings: SamplerConfig,
    world_dir: str | Path,
    samples_per_item: int = 4,
    seed: int = 0,
    progress: bool = False,
    samples: Sequence[Sequence[Image.Image]] | None = None,
) -> dict[str, float]:
    """:func:`check_rewards` of the policy's samples, of the references (``copy/``) and of the ground
    truth (``truth/``), plus ``identity_relative`` and ``prompt_relative`` (module docstring).

    ``samples`` (one list per item) are the policy's, already generated by :func:`generate_samples` with
    the same settings, to score one set of samples with several rewards.
    """
    if samples is None:
        samples = generate_samples(policy, items, settings, samples_per_item, seed, progress=progress)
    out = check_rewards(samples, items, identity_reward, prompt_reward, seed)
    copies = [[Image.open(it.reference).convert("RGB")] for it in items]
    truth = ground_truth_renders(world_dir, items, samples_per_item, seed)
    for prefix, images in (("copy", copies), ("truth", truth)):
        out |= {
            f"{prefix}/{k}": v
            for k, v in check_rewards(images, items, identity_reward, prompt_reward, seed).items()
        }
    for name in ("identity", "prompt"):
        out[f"{name}_relative"] = out[f"{name}_margin"] / out[f"truth/{name}_margin"]
    return out
