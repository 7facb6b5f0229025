"""The data area's SynCD scorers read the zoo's models (toy profile) and the configured ones (paper)."""

import json

import numpy as np
import pytest

from cgrpo_core.config import experiment_config
from cgrpo_core.data.config import ScoreConfig
from cgrpo_core.data.scorers import build_scorer, with_zoo_models
from cgrpo_core.data.scoring import pairwise_upper, score_sets, subject_crop
from cgrpo_core.data.syncd import read_syncd
from cgrpo_core.rewards.base import MissingCheckpointError
from cgrpo_core.toy.zoo.rewards.data import syncd_views


def test_zoo_scorers_have_the_scorer_signatures(zoo, small_world):
    cfg = with_zoo_models(experiment_config("toy").data.score, zoo.models)
    assert cfg.identity_model == zoo.models.dino_seg and cfg.aesthetic_model == zoo.models.aesthetic
    embed, aesthetic = build_scorer(cfg.identity_scorer, cfg), build_scorer(cfg.aesthetic_scorer, cfg)
    views = syncd_views(small_world)
    crops = [subject_crop(views.pil(i), views.pil_mask(i)) for i in range(6)]
    emb = embed([c for c, _ in crops], [m for _, m in crops])
    assert emb.shape == (6, zoo.cfg.dinov2.hidden)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    scores = aesthetic([views.pil(i) for i in range(6)])
    assert scores.shape == (6,) and np.isfinite(scores).all()


def test_scoring_the_toy_syncd_with_the_zoo(zoo, small_world, tmp_path):
    cfg = with_zoo_models(experiment_config("toy").data.score, zoo.models)
    index = read_syncd(small_world / "syncd")
    run = score_sets(
        index.sets,
        small_world / "syncd",
        tmp_path,
        build_scorer(cfg.identity_scorer, cfg),
        build_scorer(cfg.aesthetic_scorer, cfg),
        progress=False,
    )
    assert run.scored == len(index.sets) and run.failed == []
    # a set scored again from its files gives the same pairwise matrix (the scorer is deterministic)
    row = index.sets.iloc[0]
    views = syncd_views(small_world)
    idx = [views.files.index(f) for f in row.images]
    crops = [subject_crop(views.pil(i), views.pil_mask(i)) for i in idx]
    again = pairwise_upper(build_scorer("embedding", cfg)([c for c, _ in crops], [m for _, m in crops]))
    stored = json.loads((tmp_path / f"{row.set_id}.json").read_text())["dino_scores"]
    np.testing.assert_allclose(stored, again, atol=1e-5)


def test_missing_paper_weights_are_clear_errors(tmp_path):
    paper = ScoreConfig(
        identity_model={"family": "dinov2_reg", "model_id": "x/y", "local_dir": str(tmp_path)}
    )
    with pytest.raises(MissingCheckpointError, match="hf download x/y"):
        build_scorer("embedding", paper)
    with pytest.raises(ValueError, match=r"unknown scorer 'dinov2'; registered: \['embedding', 'histogram'"):
        build_scorer("dinov2")
