"""Write the toy world: a toy SynCD (real SynCD layout) with planted bad sets, a ToyBench (DreamBench layout).

Layout under ``out_dir``::

    syncd/<set id>/{0,1,2}.png, masks/{0,1,2}.png, metadata.json    one folder per set (data/syncd.py)
    toybench/dataset/<subject>/{00..}.png, masks/, prompts_and_classes.txt
    toybench/toybench_singleip.json                                   protocol in the authors' format
    ground_truth.json                                  planted defects; the pipeline never reads it
    world.json                                         config and vocabulary

Planted bad sets: ``identity_drift`` (one view shows another identity of the same class: every attribute
differs), ``near_duplicate`` (all views the same render up to invisible noise) and ``low_quality`` (one or
more views degraded by heavy noise plus blur, blocking or washed-out contrast). Good sets may end with an
edited view (a DreamBench property change or accessory) that only ever serves as a target.

Every set is planned first (cheap, sequential: identities are unique and ToyBench's 30 are held out), then
rendered from its plan alone, so rendering can run in parallel and the same seed writes the same bytes.
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from cgrpo_core.data.dreambench import PromptTable, format_prompt, prompt_kind, write_prompts_and_classes
from cgrpo_core.toy.world.backgrounds import CONTEXTS, PAINTERS
from cgrpo_core.toy.world.config import ToyWorldConfig
from cgrpo_core.toy.world.parts import ACCESSORIES, COMPANIONS
from cgrpo_core.toy.world.prompts import dreambench_templates, spec_for_template, syncd_caption
from cgrpo_core.toy.world.render import DEGRADATIONS, PROPERTIES, View, degrade, render
from cgrpo_core.toy.world.subjects import (
    CLASSES,
    COLORS,
    PATTERNS,
    SHAPES,
    Subject,
    drifted,
    sample_subject,
)

__all__ = ["SetPlan", "ViewPlan", "generate_toy_world", "plan_syncd", "plan_toybench", "sample_view"]

_CONTEXT_PHRASE = {painter: phrase for phrase, painter in CONTEXTS.items()}


@dataclass(frozen=True)
class ViewPlan:
    subject: Subject  # what is drawn (a drifted identity in a drift view)
    view: View
    prompt: str
    degradation: str | None = None
    noise: float = 0.0  # std of added noise (fraction of the range)
    noise_seed: int = 0


@dataclass(frozen=True)
class SetPlan:
    set_id: str
    subject: Subject
    views: tuple[ViewPlan, ...]
    defect: str | None = None  # identity_drift, near_duplicate, low_quality
    bad_views: tuple[int, ...] = ()
    edit: str | None = None  # the DreamBench template of an edited last view


def sample_view(
    rng: np.random.Generator,
    subject: Subject,
    context: str,
    size: str | None = None,
    position: str | None = None,
) -> View:
    """Random placement, pose and lighting of ``subject`` in ``context`` (size / position words obeyed)."""
    deformable = CLASSES[subject.class_name].deformable
    scale = {
        None: rng.uniform(0.16, 0.22),
        "small": rng.uniform(0.12, 0.14),
        "large": rng.uniform(0.24, 0.27),
    }[size]
    cx = {None: rng.uniform(0.42, 0.58), "left": rng.uniform(0.3, 0.36), "right": rng.uniform(0.64, 0.7)}[
        position
    ]
    return View(
        context=context,
        cx=float(cx),
        cy=float(rng.uniform(0.52, 0.6)),
        scale=float(scale),
        angle=float(rng.uniform(-6, 6) if deformable else rng.uniform(-15, 15)),
        flip=bool(rng.random() < 0.5),
        aspect=(float(rng.uniform(0.85, 1.2)), float(rng.uniform(0.85, 1.1))) if deformable else (1.0, 1.0),
        pose=float(rng.uniform(-25, 25)),
        tail=float(rng.uniform(-40, 40)),
        brightness=float(rng.uniform(0.88, 1.12)),
        warmth=float(rng.uniform(-0.06, 0.06)),
        detail_seed=int(rng.integers(2**31)),
    )


def _choice(rng: np.random.Generator, options: list):
    return options[int(rng.integers(len(options)))]


def _plain_view(rng, subject: Subject, context: str, cfg: ToyWorldConfig) -> ViewPlan:
    size = _choice(rng, ["small", "large"]) if rng.random() < 0.2 else None
    position = _choice(rng, ["left", "right"]) if rng.random() < 0.2 else None
    view = sample_view(rng, subject, context, size, position)
    if rng.random() < cfg.companion_share:
        view = replace(view, companion=_choice(rng, sorted(COMPANIONS)), companion_side=_choice(rng, [-1, 1]))
    if rng.random() < 0.1 and subject.class_name != "cartoon":
        view = replace(view, style="cartoon")
    words = subject.description() if rng.random() < cfg.describe_share else subject.class_name
    prompt = syncd_caption(words, _CONTEXT_PHRASE[context], size, view.companion, position, view.style)
    return ViewPlan(subject, view, prompt)


def _edited_view(rng, subject: Subject, template: str) -> ViewPlan:
    spec = spec_for_template(template)
    view = replace(sample_view(rng, subject, spec.context), accessory=spec.accessory, prop=spec.prop)
    return ViewPlan(subject, view, format_prompt(template, subject.class_name))


def _defects(cfg: ToyWorldConfig, rng: np.random.Generator) -> list[str | None]:
    n = cfg.syncd_sets
    counts = [round(n * s) for s in (cfg.drift_share, cfg.duplicate_share, cfg.low_quality_share)]
    labels = ["identity_drift"] * counts[0] + ["near_duplicate"] * counts[1] + ["low_quality"] * counts[2]
    labels = (labels + [None] * n)[:n]
    return [labels[i] for i in rng.permutation(n)]


def _plan_set(
    i: int, subject: Subject, defect: str | None, cfg: ToyWorldConfig, edits: dict, held_out: set
) -> SetPlan:
    rng = np.random.default_rng([cfg.seed, 2, i])
    n = 2 if rng.random() < cfg.two_view_share else 3
    contexts = [sorted(CONTEXTS.values())[k] for k in rng.permutation(len(CONTEXTS))[:n]]
    views = [_plain_view(rng, subject, ctx, cfg) for ctx in contexts]
    set_id, bad, edit = f"{i:05d}", (), None
    if defect == "identity_drift":
        k = int(rng.integers(n))
        views[k] = replace(views[k], subject=drifted(subject, rng, exclude=held_out))
        bad = (k,)
    elif defect == "near_duplicate":
        views = [replace(views[0], noise=1.0 / 255, noise_seed=int(rng.integers(2**31))) for _ in range(n)]
        bad = tuple(range(n))
    elif defect == "low_quality":
        bad = tuple(sorted(int(k) for k in rng.permutation(n)[: int(rng.integers(1, n + 1))]))
        for k in bad:
            views[k] = replace(
                views[k],
                degradation=_choice(rng, sorted(DEGRADATIONS)),
                noise=float(rng.uniform(0.08, 0.14)),
                noise_seed=int(rng.integers(2**31)),
            )
    elif rng.random() < cfg.edit_share:
        edit = _choice(rng, edits["live" if CLASSES[subject.class_name].live else "object"])
        views[-1] = _edited_view(rng, subject, edit)
    return SetPlan(set_id, subject, tuple(views), defect, bad, edit)


def _edit_templates(table: PromptTable) -> dict[str, list[str]]:
    def edits(templates):
        return [t for t in templates if prompt_kind(t, table.object_templates) != "recontextualization"]

    return {"object": edits(table.object_templates), "live": edits(table.live_templates)}


def plan_toybench(cfg: ToyWorldConfig, table: PromptTable) -> list[tuple[str, Subject]]:
    """30 held-out subjects with DreamBench's classes (same multiplicities), named in its style, sorted."""
    rng = np.random.default_rng([cfg.seed, 1])
    seen, named = set(), {}
    for class_name in table.classes.values():
        subject = sample_subject(rng, class_name, exclude=seen)
        seen.add(subject.key)
        name, k = subject.name(), 2
        while name in named:
            name, k = f"{subject.name()}{k}", k + 1
        named[name] = subject
    return sorted(named.items())


def plan_syncd(cfg: ToyWorldConfig, held_out: set, table: PromptTable) -> list[SetPlan]:
    """The toy SynCD's sets: unique identities (none of ``held_out``), planted defects, edits."""
    rng = np.random.default_rng([cfg.seed, 0])
    defects, classes, used = _defects(cfg, rng), sorted(CLASSES), set(held_out)
    edits, plans = _edit_templates(table), []
    for i in range(cfg.syncd_sets):
        subject = sample_subject(rng, _choice(rng, classes), exclude=used)
        used.add(subject.key)
        plans.append(_plan_set(i, subject, defects[i], cfg, edits, held_out))
    return plans


def _draw(plan: ViewPlan, cfg: ToyWorldConfig) -> tuple[np.ndarray, np.ndarray]:
    image, mask = render(plan.subject, plan.view, cfg.resolution, cfg.supersample)
    rng = np.random.default_rng(plan.noise_seed)
    if plan.degradation is not None:
        image = degrade(image, plan.degradation, rng, plan.noise)
    elif plan.noise > 0:
        noisy = image + rng.normal(0.0, plan.noise * 255, image.shape)
        image = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
    return image, mask


def _save_png(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG", compress_level=6)


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _write_set(plan: SetPlan, cfg: ToyWorldConfig, root: Path) -> None:
    folder = root / plan.set_id
    for k, view in enumerate(plan.views):
        image, mask = _draw(view, cfg)
        _save_png(image, folder / f"{k}.png")
        _save_png(mask, folder / "masks" / f"{k}.png")
    item = {
        "filenames": [f"{k}.png" for k in range(len(plan.views))],
        "prompts": [v.prompt for v in plan.views],
        "category": plan.subject.category,
        "category_description": plan.subject.description(),
    }
    _write_json(folder / "metadata.json", [item])


def _write_chunk(args: tuple[list[SetPlan], ToyWorldConfig, Path]) -> int:
    plans, cfg, root = args
    for plan in plans:
        _write_set(plan, cfg, root)
    return len(plans)


def _write_toybench(cfg: ToyWorldConfig, table: PromptTable, subjects: list, out: Path) -> None:
    root = out / "toybench" / "dataset"
    rng = np.random.default_rng([cfg.seed, 3])
    contexts = sorted(PAINTERS)
    protocol = []
    for name, subject in subjects:
        for k, c in enumerate(rng.permutation(len(contexts))[: cfg.bench_images]):
            image, mask = render(
                subject, sample_view(rng, subject, contexts[c]), cfg.resolution, cfg.supersample
            )
            _save_png(image, root / name / f"{k:02d}.png")
            _save_png(mask, root / name / "masks" / f"{k:02d}.png")
        reference = f"toybench/dataset/{name}/{int(rng.integers(cfg.bench_images)):02d}.png"
        live = CLASSES[subject.class_name].live
        for template in table.live_templates if live else table.object_templates:
            protocol.append(
                {"prompt": format_prompt(template, subject.class_name), "image_paths": [reference]}
            )
    classes = {name: subject.class_name for name, subject in subjects}
    bench = PromptTable(classes, table.object_templates, table.live_templates)
    (root / "prompts_and_classes.txt").write_text(write_prompts_and_classes(bench), encoding="utf-8")
    (out / "toybench" / "toybench_singleip.json").write_text(
        json.dumps(protocol, indent=4) + "\n", encoding="utf-8"
    )


def _ground_truth(cfg: ToyWorldConfig, plans: list[SetPlan], bench: list) -> dict:
    sets = {}
    for plan in plans:
        drift = [
            asdict(v.subject)
            for k, v in enumerate(plan.views)
            if plan.defect == "identity_drift" and k in plan.bad_views
        ]
        sets[plan.set_id] = {
            "status": "bad" if plan.defect else "good",
            "defect": plan.defect,
            "bad_views": list(plan.bad_views),
            "edit": plan.edit,
            "subject": asdict(plan.subject),
            "drift_subject": drift[0] if drift else None,
            "degradations": [v.degradation for v in plan.views],
        }
    return {
        "seed": cfg.seed,
        "note": "planted defects of the toy SynCD; the data pipeline never reads this file",
        "sets": sets,
        "toybench_subjects": {name: asdict(subject) for name, subject in bench},
    }


def _world(cfg: ToyWorldConfig, plans: list[SetPlan], bench: list) -> dict:
    return {
        "config": cfg.model_dump(exclude={"workers"}),
        "syncd_sets": len(plans),
        "syncd_images": sum(len(p.views) for p in plans),
        "toybench_subjects": len(bench),
        "classes": {name: asdict(spec) for name, spec in CLASSES.items()},
        "colors": sorted(COLORS),
        "shapes": sorted(SHAPES),
        "patterns": sorted(PATTERNS),
        "contexts": CONTEXTS,
        "accessories": sorted(ACCESSORIES),
        "properties": sorted(PROPERTIES),
        "companions": sorted(COMPANIONS),
    }


def generate_toy_world(cfg: ToyWorldConfig, out_dir: str | Path, progress: bool = True) -> dict:
    """Write the toy world into ``out_dir`` (which should be empty); returns the content of world.json."""
    out = Path(out_dir)
    table = dreambench_templates()
    bench = plan_toybench(cfg, table)
    plans = plan_syncd(cfg, {subject.key for _, subject in bench}, table)
    chunks = [plans[i : i + 8] for i in range(0, len(plans), 8)]
    jobs = [(chunk, cfg, out / "syncd") for chunk in chunks]
    bar = tqdm(total=len(plans), desc="toy SynCD sets", unit="set", disable=not progress)
    if cfg.workers > 1:
        with ProcessPoolExecutor(max_workers=cfg.workers) as pool:
            for done in pool.map(_write_chunk, jobs):
                bar.update(done)
    else:
        for job in jobs:
            bar.update(_write_chunk(job))
    bar.close()
    _write_toybench(cfg, table, bench, out)
    _write_json(out / "ground_truth.json", _ground_truth(cfg, plans, bench))
    world = _world(cfg, plans, bench)
    _write_json(out / "world.json", world)
    return world
