"""Filter on a hand-built table with known scores: bounds, missing scores, single images, ranking, pairs."""

import numpy as np
import pandas as pd
import pytest

from cgrpo_core.data.config import FilterConfig
from cgrpo_core.data.filtering import REASONS, SCOPES, TRAIN_FIELDS, filter_sets, training_pairs

CFG = FilterConfig(dino_min=0.7, dino_max=0.98, aesthetic_min=5.0)


def upper(a, b, c, below=0.0):
    """3x3 SynCD matrix with pairs (0,1)=a, (0,2)=b, (1,2)=c; ``below`` fills the ignored lower triangle."""
    return [[0.0, a, b], [below, 0.0, c], [below, below, 0.0]]


def row(set_id, dino, aes, n=3, category="rigid"):
    return {
        "set_id": set_id,
        "category": category,
        "category_description": f"thing {set_id}",
        "num_images": n,
        "images": [f"{set_id}/{k}.png" for k in range(n)],
        "masks": [f"{set_id}/masks/{k}.png" for k in range(n)],
        "prompts": [f"{set_id} prompt {k}" for k in range(n)],
        "dino_scores": dino,
        "aesthetics": aes,
    }


FIXTURE = pd.DataFrame(
    [
        row("ok_a", upper(0.8, 0.9, 0.85), [6, 7, 8]),
        row("boundary_hi", upper(0.98, 0.98, 0.98), [5, 5, 5]),  # both bounds inclusive
        row("over_hi", upper(0.9801, 0.9, 0.9), [6, 6, 6]),
        row("boundary_lo", upper(0.7, 0.75, 0.8), [6, 6, 6]),
        row("under_lo", upper(0.6999, 0.8, 0.8), [6, 6, 6]),
        row("low_aes", upper(0.8, 0.8, 0.8), [6, 4.99, 6]),
        row("missing_dino", None, [6, 6, 6]),
        row("missing_aes", upper(0.8, 0.8, 0.8), None),
        row("single", [[0.0]], [9.0], n=1),
        row("single_unscored", None, None, n=1),
        row("two_ok", [[0.0, 0.9], [0.0, 0.0]], [9, 9], n=2, category="deformable"),
        row("dup_and_low", upper(0.99, 0.5, 0.8), [6, 6, 6]),
        row("lower_ignored", upper(0.8, 0.8, 0.8, below=0.1), [6, 6, 6]),
    ]
)


def reasons(decisions):
    return dict(zip(decisions["set_id"], decisions["reason"], strict=True))


def test_set_scope_keeps_exactly_the_expected_sets():
    got = reasons(filter_sets(FIXTURE, CFG))
    assert got == {
        "ok_a": "kept",
        "boundary_hi": "kept",
        "over_hi": "near_duplicate",
        "boundary_lo": "kept",
        "under_lo": "low_identity",
        "low_aes": "low_aesthetic",
        "missing_dino": "missing_scores",
        "missing_aes": "missing_scores",
        "single": "single_image",
        "single_unscored": "single_image",
        "two_ok": "kept",
        "dup_and_low": "near_duplicate",  # the first failing check names the set
        "lower_ignored": "kept",  # only the upper triangle is read
    }
    assert set(got.values()) <= set(REASONS)


def test_ranking_is_the_mean_of_min_max_normalised_means():
    out = filter_sets(FIXTURE, CFG).set_index("set_id")
    # candidates' mean pair score / mean aesthetic: ok_a .85/7, boundary_hi .98/5, boundary_lo .75/6,
    # two_ok .9/9, lower_ignored .8/6 -> dino range .75..0.98, aesthetic range 5..9
    expected = {
        "two_ok": ((0.9 - 0.75) / 0.23 + 1.0) / 2,
        "boundary_hi": (1.0 + 0.0) / 2,
        "ok_a": ((0.85 - 0.75) / 0.23 + 0.5) / 2,
        "lower_ignored": ((0.8 - 0.75) / 0.23 + 0.25) / 2,
        "boundary_lo": (0.0 + 0.25) / 2,
    }
    assert list(out[out["rank"] >= 0].sort_values("rank").index) == list(expected)
    np.testing.assert_allclose(out.loc[list(expected), "score"], list(expected.values()))
    assert out.loc["under_lo", "rank"] == -1 and np.isnan(out.loc["under_lo", "score"])
    top3 = reasons(filter_sets(FIXTURE, CFG.model_copy(update={"top_k": 3})))
    assert [s for s, r in top3.items() if r == "kept"] == ["ok_a", "boundary_hi", "two_ok"]
    assert top3["lower_ignored"] == top3["boundary_lo"] == "not_top_k"


def test_image_scope_is_syncds_loader():
    table = pd.DataFrame(
        [
            row("drift", upper(0.9, 0.3, 0.4), [6, 6, 6]),  # image 2 is in no in-range pair
            row("one_low_aes", upper(0.8, 0.8, 0.8), [6, 4, 6]),
            row("one_dup_pair", upper(0.99, 0.9, 0.9), [6, 6, 6]),  # every image still has an in-range pair
            row("all_dup", upper(0.99, 0.99, 0.99), [6, 6, 6]),
            row("all_low", upper(0.5, 0.6, 0.2), [6, 6, 6]),
            row("aes_kills", upper(0.8, 0.8, 0.8), [6, 4, 4]),
        ]
    )
    out = filter_sets(table, CFG.model_copy(update={"scope": "image"})).set_index("set_id")
    assert out["reason"].to_dict() == {
        "drift": "kept",
        "one_low_aes": "kept",
        "one_dup_pair": "kept",
        "all_dup": "near_duplicate",
        "all_low": "low_identity",
        "aes_kills": "low_aesthetic",
    }
    assert out.loc["drift", "kept_images"] == [0, 1] and out.loc["one_low_aes", "kept_images"] == [0, 2]
    assert out.loc["one_dup_pair", "kept_images"] == [0, 1, 2]
    assert out.loc["drift", "mean_dino"] == pytest.approx(0.9)  # means over the kept images only
    assert set(SCOPES) == {"set", "image"}


def test_training_pairs_in_the_authors_format():
    decisions = filter_sets(FIXTURE, CFG)
    pairs = training_pairs(decisions, CFG)
    assert list(pairs.columns[: len(TRAIN_FIELDS)]) == list(TRAIN_FIELDS)
    assert list(pairs["id"]) == [str(i) for i in range(5)]
    # rigid sets first (by rank), then deformable
    assert list(pairs["set_id"]) == ["boundary_hi", "ok_a", "lower_ignored", "boundary_lo", "two_ok"]
    assert list(pairs["category"]) == ["rigid"] * 4 + ["deformable"]
    for p in pairs.itertuples():
        assert p.ref_index < p.index
        assert p.ref_img == f"{p.set_id}/{p.ref_index}.png" and p.img == f"{p.set_id}/{p.index}.png"
        assert p.ref_prompt == f"{p.set_id} prompt {p.ref_index}" and p.text == f"{p.set_id} prompt {p.index}"
        assert p.category_description == f"thing {p.set_id}"
    assert pairs.iloc[-1][["ref_img", "img"]].tolist() == ["two_ok/0.png", "two_ok/1.png"]  # the only pair


def test_pair_draw_is_seeded_per_set_and_capped():
    decisions = filter_sets(FIXTURE, CFG)
    pairs = training_pairs(decisions, CFG).set_index("set_id")
    alone = training_pairs(filter_sets(FIXTURE[FIXTURE["set_id"] == "ok_a"], CFG), CFG).set_index("set_id")
    assert alone.loc["ok_a", "img"] == pairs.loc["ok_a", "img"]  # independent of the other sets
    every = training_pairs(decisions, CFG.model_copy(update={"pairs_per_set": 5}))
    ok = every[every["set_id"] == "ok_a"]
    assert sorted(zip(ok["ref_index"], ok["index"], strict=True)) == [(0, 1), (0, 2), (1, 2)]
    draws = {
        training_pairs(decisions, CFG.model_copy(update={"seed": s})).set_index("set_id").loc["ok_a", "img"]
        for s in range(20)
    }
    assert len(draws) > 1  # the seed matters


def test_empty_table_and_bad_config():
    empty = filter_sets(FIXTURE.iloc[:0], CFG)
    assert len(empty) == 0 and len(training_pairs(empty, CFG)) == 0
    with pytest.raises(ValueError, match="dino_min .* must be <= filter.dino_max"):
        FilterConfig(dino_min=0.99)
