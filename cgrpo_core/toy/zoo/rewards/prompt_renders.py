"""Toy-world renders of subjects as DreamBench prompts ask them: what the toy HPSv3 learns prompt following
from, and what its checks measure it on.

A DreamBench prompt of a subject ("a dog in the snow", "a dog wearing a red hat", "a purple dog") is drawn
the way the toy world draws it for ToyBench's ground truth (policy checks' ``ground_truth_renders``, the
world's edited views): the template's :class:`~cgrpo_core.toy.world.prompts.PromptSpec` fixes the context,
the worn accessory or the property change, :func:`~cgrpo_core.toy.world.generate.sample_view` the rest
(placement, pose, lighting). Live classes (dogs, cats) take DreamBench's live template list, the others
its object list.

Subjects are re-planned from a world's ``world.json`` with the world's own planner (``plan_syncd``,
``plan_toybench``), as ``ground_truth_renders`` does for ToyBench: ``ground_truth.json`` is never read. A
toy SynCD set's subject is the identity its views show (the set's planted defects are not consulted:
renders are fresh views of the set's subject). The training world's ToyBench subjects are held out of
every training render, also when another world (the corpus) happens to draw one of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from cgrpo_core.data.dreambench import PromptTable, format_prompt
from cgrpo_core.toy.world.config import ToyWorldConfig
from cgrpo_core.toy.world.generate import plan_syncd, plan_toybench, sample_view
from cgrpo_core.toy.world.prompts import dreambench_templates, spec_for_template
from cgrpo_core.toy.world.render import View, render
from cgrpo_core.toy.world.subjects import CLASSES, Subject

__all__ = [
    "PROMPT_KINDS",
    "PromptRenders",
    "RenderJob",
    "choose_templates",
    "prompt_view",
    "render_prompts",
    "subject_templates",
    "syncd_subjects",
    "toybench_subjects",
    "world_render_size",
]

PROMPT_KINDS = ("recontextualization", "accessorization", "property")
RenderJob = tuple[str, Subject, tuple[str, ...]]  # (subject name, subject, DreamBench templates to draw)


@dataclass(frozen=True)
class PromptRenders:
    """N renders of subjects as DreamBench prompts ask: images (N, H, W, 3) uint8, the prompt of each (the
    template with the class filled in), its template and kind, and the subject it shows (``subjects``:
    index into ``names``)."""

    images: np.ndarray
    prompts: list[str]
    templates: list[str]
    kinds: list[str]
    subjects: np.ndarray
    names: list[str]

    def __len__(self) -> int:
        return len(self.images)

    def pil(self, index: int) -> Image.Image:
        return Image.fromarray(self.images[index])

    def groups(self) -> list[np.ndarray]:
        """Indices of the renders of each subject (``names`` order)."""
        return [np.flatnonzero(self.subjects == k) for k in range(len(self.names))]


def subject_templates(subject: Subject, table: PromptTable) -> tuple[str, ...]:
    """DreamBench's templates for the subject's class: the live list for dogs and cats, else the object
    list (both: 25 templates, the last 5 property changes)."""
    return table.live_templates if CLASSES[subject.class_name].live else table.object_templates


def prompt_view(rng: np.random.Generator, subject: Subject, template: str) -> View:
    """A random view of ``subject`` as ``template`` asks: its context, accessory or property change."""
    spec = spec_for_template(template)
    return replace(sample_view(rng, subject, spec.context), accessory=spec.accessory, prop=spec.prop)


def _world_config(world_dir: str | Path) -> ToyWorldConfig:
    config = json.loads((Path(world_dir) / "world.json").read_text(encoding="utf-8"))["config"]
    return ToyWorldConfig(**config)


def world_render_size(world_dir: str | Path) -> tuple[int, int]:
    """(resolution, supersample) the world renders at."""
    cfg = _world_config(world_dir)
    return cfg.resolution, cfg.supersample


def toybench_subjects(world_dir: str | Path) -> list[tuple[str, Subject]]:
    """The world's ToyBench subjects (name, subject), re-planned from its world.json (sorted by name)."""
    return plan_toybench(_world_config(world_dir), dreambench_templates())


def syncd_subjects(world_dir: str | Path) -> list[tuple[str, Subject]]:
    """The subject of each toy SynCD set of the world, (set id, subject) in set order, re-planned from its
    world.json with the generator's own planner (no ground_truth.json)."""
    cfg, table = _world_config(world_dir), dreambench_templates()
    held_out = {subject.key for _, subject in plan_toybench(cfg, table)}
    return [(plan.set_id, plan.subject) for plan in plan_syncd(cfg, held_out, table)]


def choose_templates(
    subjects: Sequence[tuple[str, Subject]],
    counts: tuple[int, int],
    rng: np.random.Generator,
    changes: tuple[int, int] = (0, 0),
) -> list[RenderJob]:
    """Per subject, ``counts[0]`` (object classes) or ``counts[1]`` (live classes) distinct templates of its
    DreamBench list (all 25 when the count is higher), in list order: ``changes[0]`` / ``changes[1]`` of them
    drawn from the templates that change the subject itself (property; accessorization, live classes
    only), the rest uniformly from the remaining templates."""
    table, jobs = dreambench_templates(), []
    for name, subject in subjects:
        templates = subject_templates(subject, table)
        live = int(CLASSES[subject.class_name].live)
        count = min(counts[live], len(templates))
        changing = [k for k, t in enumerate(templates) if spec_for_template(t).kind != "recontextualization"]
        size = min(changes[live], count, len(changing))
        first = rng.choice(changing, size=size, replace=False) if size else np.zeros(0, dtype=int)
        rest = np.setdiff1d(np.arange(len(templates)), first)
        chosen = np.sort(np.r_[first, rng.choice(rest, size=count - len(first), replace=False)])
        jobs.append((name, subject, tuple(templates[int(k)] for k in chosen)))
    return jobs


def _render_job(args: tuple[RenderJob, int, int, tuple[int, ...], int]) -> list[np.ndarray]:
    (_, subject, templates), resolution, supersample, seed, index = args
    rng = np.random.default_rng([*seed, index])  # per subject: the same renders whatever the worker count
    return [render(subject, prompt_view(rng, subject, t), resolution, supersample)[0] for t in templates]


def render_prompts(
    jobs: Sequence[RenderJob],
    resolution: int,
    supersample: int,
    seed: Sequence[int],
    workers: int = 1,
) -> PromptRenders:
    """Render every (subject, template) of ``jobs``; deterministic for a seed (entropy integers: subject k
    draws its views from the generator of ``[*seed, k]``), in job order, over ``workers`` processes."""
    args = [(job, resolution, supersample, tuple(seed), k) for k, job in enumerate(jobs)]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            drawn = list(pool.map(_render_job, args, chunksize=max(1, len(args) // (4 * workers))))
    else:
        drawn = [_render_job(a) for a in args]
    images, prompts, templates, kinds, subjects = [], [], [], [], []
    for k, ((_, subject, chosen), rendered) in enumerate(zip(jobs, drawn, strict=True)):
        for template, image in zip(chosen, rendered, strict=True):
            images.append(image)
            prompts.append(format_prompt(template, subject.class_name))
            templates.append(template)
            kinds.append(spec_for_template(template).kind)
            subjects.append(k)
    if not images:
        raise ValueError("no prompt renders: every job has an empty template list")
    return PromptRenders(
        np.stack(images), prompts, templates, kinds, np.asarray(subjects), [name for name, _, _ in jobs]
    )
