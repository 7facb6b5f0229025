"""Checks of the toy reward models against ground truth the toy world knows, on held-out data.

Every number is computed through the rewards' own loaders and reward classes (``RewardSet``), so it is what
a trainer or the evaluation would see. Held-out data: ToyBench (30 subjects the toy SynCD never shows) and a
second toy world generated with another seed (``RewardChecksConfig.world_seed``); its ground truth says
which sets are good. Metrics (acceptance thresholds of the zoo issue in brackets):

- ``dino_seg_auc`` [>= 0.9], ``dino_auc``, ``clip_i_auc``: ROC AUC of the identity reward on ToyBench pairs
  of the same subject against pairs of different subjects (every image with one same-subject and
  ``different_per_image`` different-subject partners); ``scorer_auc``: the same for the SynCD identity
  scorer's path (square subject crop with the dataset's mask, then the embedder);
- ``dino_seg_background_shift`` / ``dino_background_shift``: mean |1 - similarity| of a subject rendered
  in one pose on two different backgrounds (DINO-Seg should be well below plain DINO);
  ``dino_seg_background_shift_reference_mask``: the same with the reference's true mask given (only the
  image is segmented, as when references come with dataset masks); ``scorer_background_shift``: DINO-Seg's
  model on the renderer's true masks for both (the SynCD scorer's path): the model's part alone, without
  the toy segmenter's errors;
- ``clip_t_top1`` [>= 0.8]: share of good check-world views whose own caption scores highest among a
  batch of ``caption_batch`` distinct captions (averaged over several random batchings);
- ``aesthetic_auc`` [>= 0.9]: AUC of clean check-world views against degraded copies, with the mean
  scores of both; ``aesthetic_planted_auc``: good views against the planted low-quality views;
- the prompt rewards, each metric for ``hpsv3`` and, on the same pairs, ``clip_t`` (``<r>`` below):

  - on good check-world views (held-out toy SynCD sets, SynCD-style captions): ``<r>_prompt_acc``,
    ``<r>_scene_acc``, ``<r>_quality_acc`` [>= 0.9]: share of views whose score with the own caption beats
    the same image with another set's caption, with the caption of another view of the same set (same
    subject, other scene), and the degraded copy with the own caption; ``<r>_within_prompt_acc/syncd``
    [>= 0.9]: the own caption on its view beats it on that other view (prompt following within a prompt);
    ``<r>_mean``: mean score of the views with their own captions;
  - on ToyBench's 30 subjects drawn as each of their 25 DreamBench prompts asks (the toy world's renders,
    as the policy checks' ground truth): ``<r>_within_prompt_acc/<kind>`` [>= 0.9] per prompt kind
    (recontextualization, accessorization, property): share of prompts whose render outscores, under that
    prompt, a render of the same subject made for another of its prompts (drawn at random);
    ``<r>_matched_gap``: mean score difference of those pairs; ``<r>_prompt_mean_span`` [< the gap]:
    max - min over the templates of the mean matched score (averaged over subjects): how much a reward
    prefers some prompts whatever the image; ``<r>_matched_mean/<kind>``: mean matched score per kind;
    ``<r>_quality_acc/toybench`` [>= 0.9]: the render beats its degraded copy under its prompt (every
    third render);
- ``segmenter_iou``: mean IoU of the segmenter's masks with ToyBench's true masks.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.metrics import roc_auc_score

from cgrpo_core.data.scoring import subject_crop
from cgrpo_core.rewards.base import RewardBatch
from cgrpo_core.rewards.config import RewardModels
from cgrpo_core.rewards.embeddings import subject_embedder
from cgrpo_core.rewards.registry import RewardSet
from cgrpo_core.rewards.segmentation import load_segmenter
from cgrpo_core.toy.world.backgrounds import PAINTERS
from cgrpo_core.toy.world.generate import sample_view
from cgrpo_core.toy.world.prompts import dreambench_templates
from cgrpo_core.toy.world.render import render
from cgrpo_core.toy.world.subjects import Subject
from cgrpo_core.toy.zoo.rewards.config import DegradationConfig, RewardChecksConfig
from cgrpo_core.toy.zoo.rewards.data import ViewData, bench_views, degrade_view, other_world, syncd_views
from cgrpo_core.toy.zoo.rewards.prompt_renders import (
    PROMPT_KINDS,
    PromptRenders,
    render_prompts,
    subject_templates,
    toybench_subjects,
    world_render_size,
)

__all__ = [
    "DIFFERENT_PER_IMAGE",
    "HPSV3_VIEWS",
    "identity_pairs",
    "prompt_reward_checks",
    "run_reward_checks",
]

DIFFERENT_PER_IMAGE = 3  # different-subject partners per ToyBench image in the AUC pairs
HPSV3_VIEWS = 96  # good check-world views scored by the prompt rewards (5 sequences each)
BENCH_QUALITY_EVERY = 3  # every 3rd ToyBench render is also scored degraded (250 of 750: the checks' time)
CAPTION_BATCHINGS = 10  # random batchings averaged in clip_t_top1


def identity_pairs(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) [M, 2] and same-subject flags [M]: per image one same-label partner (if any) and
    ``DIFFERENT_PER_IMAGE`` different-label partners."""
    pairs, same = [], []
    for i, label in enumerate(labels):
        mates = np.flatnonzero((labels == label) & (np.arange(len(labels)) != i))
        others = np.flatnonzero(labels != label)
        if len(mates):
            pairs.append((i, int(rng.choice(mates))))
            same.append(True)
        for j in rng.choice(others, size=min(DIFFERENT_PER_IMAGE, len(others)), replace=False):
            pairs.append((i, int(j)))
            same.append(False)
    return np.asarray(pairs), np.asarray(same)


def _auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of ``scores`` for the boolean labels ``positive``; NaN when one class is missing (a ToyBench
    with one image per subject has no same-subject pair)."""
    positive = np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        return float("nan")
    return float(roc_auc_score(positive, scores))


def _pair_auc(rewards: RewardSet, name: str, bench: ViewData, pairs: np.ndarray, same: np.ndarray) -> float:
    batch = RewardBatch(
        [bench.pil(i) for i in pairs[:, 0]],
        references=[[bench.pil(j)] for j in pairs[:, 1]],
        subjects=[bench.captions[i] for i in pairs[:, 0]],
    )
    return _auc(same, rewards.score([name], batch)[name].numpy())


def _scorer_auc(models: RewardModels, bench: ViewData, pairs: np.ndarray, same: np.ndarray) -> float:
    """AUC of the SynCD identity scorer's path: square subject crop (dataset mask), then the embedder."""
    embed = subject_embedder(models.dino_seg)
    crops = [subject_crop(bench.pil(i), bench.pil_mask(i)) for i in range(len(bench))]
    emb = embed([c for c, _ in crops], [m for _, m in crops])  # (N, D), unit rows
    sims = (emb[pairs[:, 0]] * emb[pairs[:, 1]]).sum(1)
    return _auc(same, sims)


def _background_swaps(rewards: RewardSet, world_dir: Path, cfg: RewardChecksConfig) -> dict[str, float]:
    """Mean |1 - sim| of ToyBench subjects drawn in one pose on two different backgrounds."""
    truth = json.loads((world_dir / "ground_truth.json").read_text(encoding="utf-8"))["toybench_subjects"]
    world = json.loads((world_dir / "world.json").read_text(encoding="utf-8"))["config"]
    size = (world["resolution"], world["supersample"])
    rng = np.random.default_rng([cfg.seed, 17])
    contexts = sorted(PAINTERS)
    first, second, first_masks, second_masks, classes = [], [], [], [], []
    for name in sorted(truth)[: cfg.swap_subjects]:
        subject = Subject(**truth[name])
        a, b = rng.choice(len(contexts), size=2, replace=False)
        view = sample_view(rng, subject, contexts[a])
        for context, images, masks in (
            (contexts[a], first, first_masks),
            (contexts[b], second, second_masks),
        ):
            image, mask = render(subject, replace(view, context=context), *size)
            images.append(Image.fromarray(image))
            masks.append(Image.fromarray(mask))
        classes.append(subject.class_name)
    batch = RewardBatch(first, references=[[im] for im in second], subjects=classes)
    scores = rewards.score(["dino_seg", "dino"], batch)
    out = {f"{k}_background_shift": float((1 - v).abs().mean()) for k, v in scores.items()}
    known = RewardBatch(
        first,
        references=[[im] for im in second],
        subjects=classes,
        reference_masks=[[m] for m in second_masks],
    )  # the reference's mask is known
    out["dino_seg_background_shift_reference_mask"] = float((1 - rewards.get("dino_seg")(known)).abs().mean())
    embed = subject_embedder(rewards.models.dino_seg)  # the same model on the renderer's true masks
    a, b = embed(first, first_masks), embed(second, second_masks)
    out["scorer_background_shift"] = float(np.abs(1 - (a * b).sum(1)).mean())
    return out


def _good_views(check: ViewData, check_dir: Path) -> np.ndarray:
    truth = json.loads((check_dir / "ground_truth.json").read_text(encoding="utf-8"))["sets"]
    return np.asarray(
        [i for i in range(len(check)) if truth[check.names[check.labels[i]]]["status"] == "good"]
    )


def _clip_t_top1(rewards: RewardSet, check: ViewData, good: np.ndarray, cfg: RewardChecksConfig) -> float:
    """Top-1 of the own caption among ``caption_batch`` distinct captions of good views."""
    clip_t = rewards.get("clip_t")
    captions = [check.captions[i] for i in good]
    image = F.normalize(clip_t.encoder.embed([check.pil(i) for i in good]), dim=-1)  # (G, P)
    text = F.normalize(clip_t.embed_text(captions), dim=-1)  # (G, P)
    rng, hits = np.random.default_rng([cfg.seed, 19]), []
    for _ in range(CAPTION_BATCHINGS):
        order, batch = rng.permutation(len(good)).tolist(), []
        for k in order:  # greedy batches of distinct captions
            if captions[k] not in {captions[b] for b in batch}:
                batch.append(k)
            if len(batch) == cfg.caption_batch:
                sims = image[batch] @ text[batch].T  # (B, B)
                hits += (sims.argmax(1) == torch.arange(len(batch))).tolist()
                batch = []
    return float(np.mean(hits))


def _aesthetic(
    rewards: RewardSet,
    check: ViewData,
    good: np.ndarray,
    planted: np.ndarray,
    degradation: DegradationConfig,
    seed: int,
) -> dict[str, float]:
    rng = np.random.default_rng([seed, 23])
    clean = [check.pil(i) for i in good]
    degraded = [Image.fromarray(degrade_view(check.images[i], rng, degradation)[0]) for i in good]
    score = rewards.get("aesthetic")
    s_clean, s_degraded = score(RewardBatch(clean)).numpy(), score(RewardBatch(degraded)).numpy()
    labels = np.r_[np.ones(len(clean)), np.zeros(len(degraded))]
    out = {
        "aesthetic_auc": _auc(labels, np.r_[s_clean, s_degraded]),
        "aesthetic_clean_mean": float(s_clean.mean()),
        "aesthetic_degraded_mean": float(s_degraded.mean()),
    }
    if len(planted):
        s_planted = score(RewardBatch([check.pil(i) for i in planted])).numpy()
        both = np.r_[np.ones(len(clean)), np.zeros(len(planted))]
        out["aesthetic_planted_auc"] = _auc(both, np.r_[s_clean, s_planted])
    return out


def _planted_low_quality(check: ViewData, check_dir: Path) -> np.ndarray:
    truth = json.loads((check_dir / "ground_truth.json").read_text(encoding="utf-8"))["sets"]
    views = []
    for label, name in enumerate(check.names):
        if truth[name]["defect"] == "low_quality":
            idx = np.flatnonzero(check.labels == label)
            views += [int(idx[k]) for k in truth[name]["bad_views"]]
    return np.asarray(views, dtype=int)


def _bench_prompt_renders(world_dir: Path, seed: int) -> tuple[PromptRenders, np.ndarray]:
    """Every ToyBench subject drawn as each of its 25 DreamBench prompts asks (re-planned from world.json,
    as the policy checks' ground truth), and per render its within-prompt rival: a render of the same
    subject made for another of its prompts, drawn at random."""
    table = dreambench_templates()
    jobs = [(name, s, subject_templates(s, table)) for name, s in toybench_subjects(world_dir)]
    workers = torch.get_num_threads()  # the zoo's thread budget, as processes while rendering
    renders = render_prompts(jobs, *world_render_size(world_dir), seed=(seed, 43), workers=workers)
    rng, groups = np.random.default_rng([seed, 47]), renders.groups()
    rivals = [int(rng.choice(np.setdiff1d(groups[renders.subjects[i]], [i]))) for i in range(len(renders))]
    return renders, np.asarray(rivals)


def _scores(rewards: RewardSet, name: str, images: list[Image.Image], prompts: list[str]) -> np.ndarray:
    return rewards.get(name)(RewardBatch(images, prompts=prompts)).numpy()


def _bench_prompt_checks(
    rewards: RewardSet, renders: PromptRenders, rivals: np.ndarray, degraded: list[Image.Image], name: str
) -> dict[str, float]:
    """Prompt following and quality of the prompt reward ``name`` on ToyBench renders (module docstring)."""
    images = [renders.pil(i) for i in range(len(renders))]
    matched = _scores(rewards, name, images, renders.prompts)
    rival = _scores(rewards, name, [images[j] for j in rivals], renders.prompts)
    some = np.arange(0, len(renders), BENCH_QUALITY_EVERY)
    worse = _scores(rewards, name, degraded, [renders.prompts[i] for i in some])
    kinds, templates = np.asarray(renders.kinds), np.asarray(renders.templates)
    means = [matched[templates == t].mean() for t in sorted(set(renders.templates))]
    out = {
        f"{name}_within_prompt_acc/{kind}": float((matched > rival)[kinds == kind].mean())
        for kind in PROMPT_KINDS
        if (kinds == kind).any()
    }
    out |= {
        f"{name}_matched_mean/{kind}": float(matched[kinds == kind].mean())
        for kind in PROMPT_KINDS
        if (kinds == kind).any()
    }
    return out | {
        f"{name}_matched_gap": float((matched - rival).mean()),
        f"{name}_prompt_mean_span": float(max(means) - min(means)),
        f"{name}_quality_acc/toybench": float((matched[some] > worse).mean()),
    }


def _syncd_prompt_checks(
    rewards: RewardSet,
    check: ViewData,
    views: list[int],
    rivals: dict[str, list],
    degraded: list[Image.Image],
    name: str,
) -> dict[str, float]:
    """Prompt following and quality of the prompt reward ``name`` on held-out toy SynCD views."""
    images, own = [check.pil(i) for i in views], [check.captions[i] for i in views]
    score = _scores(rewards, name, images, own)
    other = _scores(rewards, name, images, rivals["other"])
    worse = _scores(rewards, name, degraded, own)
    has = [k for k, j in enumerate(rivals["mate"]) if j is not None]
    mates = [rivals["mate"][k] for k in has]
    scene = _scores(rewards, name, [images[k] for k in has], [check.captions[j] for j in mates])
    mate_image = _scores(rewards, name, [check.pil(j) for j in mates], [own[k] for k in has])
    return {
        f"{name}_prompt_acc": float((score > other).mean()),
        f"{name}_scene_acc": float((score[has] > scene).mean()),
        f"{name}_within_prompt_acc/syncd": float((score[has] > mate_image).mean()),
        f"{name}_quality_acc": float((score > worse).mean()),
        f"{name}_mean": float(score.mean()),
    }


def _prompt_rewards(
    rewards: RewardSet,
    world_dir: Path,
    check: ViewData,
    good: np.ndarray,
    degradation: DegradationConfig,
    seed: int,
) -> dict[str, float]:
    """The prompt rewards' checks (HPSv3 and, on the same pairs, CLIP-T): ToyBench renders and good views
    of the check world (module docstring)."""
    rng = np.random.default_rng([seed, 29])
    views = rng.permutation(good)[:HPSV3_VIEWS].tolist()
    rivals: dict[str, list] = {"other": [], "mate": []}
    degraded = []
    for i in views:
        mates = [
            j for j in good if check.labels[j] == check.labels[i] and check.captions[j] != check.captions[i]
        ]
        strangers = np.flatnonzero(check.labels != check.labels[i])
        rivals["other"].append(check.captions[int(rng.choice(strangers))])
        rivals["mate"].append(int(rng.choice(mates)) if mates else None)
        degraded.append(Image.fromarray(degrade_view(check.images[i], rng, degradation)[0]))
    renders, bench_rivals = _bench_prompt_renders(world_dir, seed)
    bench_degraded = [
        Image.fromarray(degrade_view(renders.images[i], rng, degradation)[0])
        for i in range(0, len(renders), BENCH_QUALITY_EVERY)
    ]
    out = {}
    for name in ("hpsv3", "clip_t"):
        out |= _syncd_prompt_checks(rewards, check, views, rivals, degraded, name)
        out |= _bench_prompt_checks(rewards, renders, bench_rivals, bench_degraded, name)
    return out


def _segmenter_iou(models: RewardModels, bench: ViewData) -> float:
    masks = load_segmenter(models.segmenter)([bench.pil(i) for i in range(len(bench))], None)
    ious = [(m & t).sum() / max((m | t).sum(), 1) for m, t in zip(masks, bench.masks, strict=True)]
    return float(np.mean(ious))


def prompt_reward_checks(
    models: RewardModels,
    world_dir: str | Path,
    check_dir: str | Path,
    cfg: RewardChecksConfig,
    degradation: DegradationConfig,
) -> dict[str, float]:
    """The prompt rewards' metrics alone (``hpsv3_*`` and ``clip_t_*``, module docstring): what
    benchmarks/bench_toy_hpsv3.py measures; the check world is generated into ``check_dir`` unless there."""
    world_dir = Path(world_dir)
    check_dir = other_world(world_dir, check_dir, cfg.world_seed, cfg.world_sets)
    check = syncd_views(check_dir)
    good = _good_views(check, check_dir)
    return _prompt_rewards(RewardSet(models), world_dir, check, good, degradation, cfg.seed)


def run_reward_checks(
    models: RewardModels,
    world_dir: str | Path,
    check_dir: str | Path,
    cfg: RewardChecksConfig,
    degradation: DegradationConfig,
) -> dict[str, float]:
    """Every check metric (module docstring) of the reward models ``models`` trained on ``world_dir``;
    the check world is generated into ``check_dir`` (reused when there)."""
    world_dir, rewards = Path(world_dir), RewardSet(models)
    check_dir = other_world(world_dir, check_dir, cfg.world_seed, cfg.world_sets)
    bench, check = bench_views(world_dir), syncd_views(check_dir)
    pairs, same = identity_pairs(bench.labels, np.random.default_rng([cfg.seed, 31]))
    out = {
        f"{name}_auc": _pair_auc(rewards, name, bench, pairs, same) for name in ("dino_seg", "dino", "clip_i")
    }
    out["scorer_auc"] = _scorer_auc(models, bench, pairs, same)
    out |= _background_swaps(rewards, world_dir, cfg)
    good = _good_views(check, check_dir)
    out["clip_t_top1"] = _clip_t_top1(rewards, check, good, cfg)
    out |= _aesthetic(rewards, check, good, _planted_low_quality(check, check_dir), degradation, cfg.seed)
    out |= _prompt_rewards(rewards, world_dir, check, good, degradation, cfg.seed)
    out["segmenter_iou"] = _segmenter_iou(models, bench)
    return out
