"""Planted-defect recovery: bookkeeping by hand, then scorer + filter on the toy SynCD with the baselines."""

import pandas as pd
import pytest

from cgrpo_core.config import experiment_config
from cgrpo_core.data.filtering import filter_sets
from cgrpo_core.data.scorers import build_scorer
from cgrpo_core.data.scoring import merge_scores, score_sets
from cgrpo_core.data.syncd import read_syncd
from cgrpo_core.toy.world.evaluate import check_metrics, evaluate_filter, load_ground_truth


def test_bookkeeping_by_hand():
    truth = {
        "g1": {"status": "good", "defect": None, "bad_views": [], "edit": None},
        "g2": {"status": "good", "defect": None, "bad_views": [], "edit": "a red {0} {1}"},
        "g3": {"status": "good", "defect": None, "bad_views": [], "edit": None},
        "b1": {"status": "bad", "defect": "identity_drift", "bad_views": [2], "edit": None},
        "b2": {"status": "bad", "defect": "identity_drift", "bad_views": [1], "edit": None},
        "b3": {"status": "bad", "defect": "near_duplicate", "bad_views": [0, 1], "edit": None},
        "b4": {"status": "bad", "defect": "low_quality", "bad_views": [0], "edit": None},
    }
    decisions = pd.DataFrame(
        {
            "set_id": ["g1", "g2", "b1", "b2", "b3"],  # g3 and b4 unreadable: rejected
            "kept": [True, False, True, True, False],
            "kept_images": [[0, 1, 2], [], [0, 1], [0, 1], []],  # b1 kept without its drifted view 2
        }
    )
    result = evaluate_filter(decisions, truth)
    assert result["good_kept_share"] == pytest.approx(1 / 3)
    assert result["plain_good_kept_share"] == pytest.approx(1 / 2) and result["edited_good_kept_share"] == 0.0
    assert result["bad_removed_share"] == pytest.approx(3 / 4)  # b2 kept with its bad view 1
    assert result["removed_share_by_defect"] == {
        "identity_drift": 0.5,
        "low_quality": 1.0,
        "near_duplicate": 1.0,
    }
    assert result["lost_good_sets"] == ["g2", "g3"] and result["missed_bad_sets"] == ["b2"]
    metrics = check_metrics(result)
    assert metrics["toy_bad_removed_share"] == 0.75 and metrics["toy_removed_share_identity_drift"] == 0.5
    assert metrics["toy_good_sets"] == 3.0 and "toy_lost_good_sets" not in metrics


@pytest.mark.parametrize("scope", ["set", "image"])
def test_baseline_scorers_recover_the_planted_defects(toy_world, tmp_path, scope):
    """The toy SynCD check with the model-free baselines, which the test profile scores with (the toy
    profile's zoo models: tests/cgrpo_core/toy/zoo/rewards, benchmarks/bench_zoo_rewards.py)."""
    cfg = experiment_config("test").data
    root = toy_world / "syncd"
    index = read_syncd(root)
    run = score_sets(
        index.sets,
        root,
        tmp_path,
        build_scorer(cfg.score.identity_scorer),
        build_scorer(cfg.score.aesthetic_scorer),
        progress=False,
    )
    assert run.scored == 60 and run.failed == []
    decisions = filter_sets(
        merge_scores(index.sets, tmp_path), cfg.filter.model_copy(update={"scope": scope})
    )
    result = evaluate_filter(decisions, load_ground_truth(toy_world / "ground_truth.json"))
    assert result["bad_removed_share"] >= 0.9, result
    assert result["good_kept_share"] >= 0.9, result
    assert result["plain_good_kept_share"] >= 0.95, result
