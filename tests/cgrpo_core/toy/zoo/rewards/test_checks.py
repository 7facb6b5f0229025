"""Checks against the toy world's ground truth: pair bookkeeping by hand, better than chance on a tiny run."""

import numpy as np

from cgrpo_core.toy.zoo.rewards.checks import DIFFERENT_PER_IMAGE, identity_pairs


def test_identity_pairs_by_hand():
    labels = np.array([0, 0, 1, 1, 2])
    pairs, same = identity_pairs(labels, np.random.default_rng(0))
    # 4 images with a mate give 1 same pair each, all 5 images give DIFFERENT_PER_IMAGE others (3 here)
    assert same.sum() == 4 and (~same).sum() == 5 * DIFFERENT_PER_IMAGE
    assert all((labels[i] == labels[j]) == s for (i, j), s in zip(pairs, same, strict=True))
    assert all(i != j for i, j in pairs)


def test_checks_beat_chance_on_a_tiny_run(zoo):
    """The test preset trains for seconds on 24 sets at 32 px; the acceptance thresholds (AUC >= 0.9, top-1
    >= 0.8) are measured at the toy preset by benchmarks/bench_zoo_rewards.py. Here: clearly better than
    chance (AUC 0.5, top-1 1/8 with batches of 8 captions, IoU of an empty mask 0); the DINO v1 and
    HPSv3 of the test preset are too short-trained to beat chance reliably and are left out."""
    checks = zoo.checks
    assert checks["scorer_auc"] > 0.8, checks  # dataset masks + masked DINOv2: learns fastest
    assert checks["dino_seg_auc"] > 0.65, checks  # through the 250-step segmenter
    assert checks["segmenter_iou"] > 0.3, checks
    assert checks["clip_t_top1"] > 0.2, checks
    assert checks["aesthetic_auc"] > 0.6, checks
    # DINO-Seg's model on true masks: a background swap barely moves it, unlike plain DINO on whole images
    assert checks["scorer_background_shift"] < 0.05 < checks["dino_background_shift"], checks
    assert all(np.isfinite(v) for v in checks.values())
