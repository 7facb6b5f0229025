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
- ``hpsv3_prompt_acc``, ``hpsv3_scene_acc``, ``hpsv3_quality_acc``: share of good views whose HPSv3 score
  with the own caption beats another set's caption, the caption of another view of the same set (same
  subject, other scene), and a degraded copy with the own caption;
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
from cgrpo_core.data.toyworld.backgrounds import PAINTERS
from cgrpo_core.data.toyworld.generate import sample_view
from cgrpo_core.data.toyworld.render import render
from cgrpo_core.data.toyworld.subjects import Subject
from cgrpo_core.rewards.base import RewardBatch
from cgrpo_core.rewards.config import RewardModels
from cgrpo_core.rewards.embeddings import subject_embedder
from cgrpo_core.rewards.registry import RewardSet
from cgrpo_core.rewards.segmentation import load_segmenter
from cgrpo_core.zoo.reward_config import DegradationConfig, RewardChecksConfig
from cgrpo_core.zoo.reward_data import ViewData, bench_views, degrade_view, other_world, syncd_views

__all__ = ["DIFFERENT_PER_IMAGE", "HPSV3_VIEWS", "identity_pairs", "run_reward_checks"]

DIFFERENT_PER_IMAGE = 3  # different-subject partners per ToyBench image in the AUC pairs
HPSV3_VIEWS = 96  # good check-world views scored by HPSv3 (4 sequences each)
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


def _hpsv3(rewards: RewardSet, check: ViewData, good: np.ndarray, degradation, seed: int) -> dict[str, float]:
    rng = np.random.default_rng([seed, 29])
    views = rng.permutation(good)[:HPSV3_VIEWS].tolist()
    own, other, scene, images, degraded = [], [], [], [], []
    for i in views:
        mates = [
            j for j in good if check.labels[j] == check.labels[i] and check.captions[j] != check.captions[i]
        ]
        strangers = np.flatnonzero(check.labels != check.labels[i])
        own.append(check.captions[i])
        other.append(check.captions[int(rng.choice(strangers))])
        scene.append(check.captions[int(rng.choice(mates))] if mates else None)
        images.append(check.pil(i))
        degraded.append(Image.fromarray(degrade_view(check.images[i], rng, degradation)[0]))
    hps = rewards.get("hpsv3")
    mu_own = hps(RewardBatch(images, prompts=own)).numpy()
    mu_other = hps(RewardBatch(images, prompts=other)).numpy()
    mu_degraded = hps(RewardBatch(degraded, prompts=own)).numpy()
    has = [k for k, c in enumerate(scene) if c is not None]
    mu_scene = hps(RewardBatch([images[k] for k in has], prompts=[scene[k] for k in has])).numpy()
    return {
        "hpsv3_prompt_acc": float((mu_own > mu_other).mean()),
        "hpsv3_scene_acc": float((mu_own[has] > mu_scene).mean()),
        "hpsv3_quality_acc": float((mu_own > mu_degraded).mean()),
        "hpsv3_mean": float(mu_own.mean()),
    }


def _segmenter_iou(models: RewardModels, bench: ViewData) -> float:
    masks = load_segmenter(models.segmenter)([bench.pil(i) for i in range(len(bench))], None)
    ious = [(m & t).sum() / max((m | t).sum(), 1) for m, t in zip(masks, bench.masks, strict=True)]
    return float(np.mean(ious))


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
    out |= _hpsv3(rewards, check, good, degradation, cfg.seed)
    out["segmenter_iou"] = _segmenter_iou(models, bench)
    return out
