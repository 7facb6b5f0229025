"""Benchmark aggregation: image means per group and item-bootstrap intervals.

:func:`synthetic_scores` (a small table in the layout of ``scores.parquet``) is shared with the table and
figure tests.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from cgrpo_core.evaluation.aggregate import group_rng, metric_label, overall, summarize, summary_wide

METRICS = ["dino", "clip_i", "clip_t", "hpsv3"]
MODEL_LABELS = {
    "dino": "facebook/dino-vits16",
    "clip_i": "openai/clip-vit-base-patch32",
    "clip_t": "openai/clip-vit-base-patch32",
    "hpsv3": "toy HPSv3",
}
SUBJECTS = (("dog", "dog", True), ("can", "can", False), ("clock", "clock", False))
KINDS = ("recontextualization", "accessorization", "property")


def synthetic_scores(subjects=SUBJECTS, prompts: int = 5, images: int = 4, seed: int = 0) -> pd.DataFrame:
    """``len(subjects) x prompts`` items of ``images`` images each, with random scores."""
    rng = np.random.default_rng(seed)
    rows = []
    for s, (subject, class_name, live) in enumerate(subjects):
        for p in range(prompts):
            item = s * prompts + p
            for k in range(images):
                rows.append(
                    {
                        "item": item,
                        "subject": subject,
                        "class_name": class_name,
                        "live": live,
                        "prompt_index": p,
                        "kind": KINDS[p % len(KINDS)],
                        "prompt": f"a {class_name} prompt {p}",
                        "image_index": k,
                        "seed": 1000 * item + k,
                        "file_name": f"images/{item:06d}_{k}.png",
                        "model": "toy-model",
                        "dino": rng.uniform(0.5, 0.9),
                        "clip_i": rng.uniform(0.6, 0.95),
                        "clip_t": rng.uniform(0.2, 0.35),
                        "hpsv3": rng.uniform(2.0, 9.0),
                    }
                )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def scores():
    return synthetic_scores()


@pytest.fixture(scope="module")
def summary(scores):
    return summarize(scores, METRICS, MODEL_LABELS, n_boot=500, seed=0)


def _select(summary, group, value, metric):
    rows = summary[(summary.group == group) & (summary.value == value) & (summary.metric == metric)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_means_and_counts_match_a_direct_pandas_computation(scores, summary):
    scores = scores.assign(subject_type=np.where(scores.live, "live", "object"))
    for group, column in (("subject", "subject"), ("kind", "kind"), ("subject_type", "subject_type")):
        expected = scores.groupby(column)[METRICS].mean()
        for value, means in expected.iterrows():
            part = scores[scores[column] == value]
            for metric in METRICS:
                row = _select(summary, group, value, metric)
                assert row["mean"] == pytest.approx(means[metric], rel=1e-12)
                assert row["images"] == len(part) and row["items"] == part["item"].nunique()
    for metric in METRICS:
        row = _select(summary, "all", "all", metric)
        assert row["mean"] == pytest.approx(scores[metric].mean(), rel=1e-12)
        assert (row["images"], row["items"]) == (60, 15)
    # 1 all + 3 subjects + 3 kinds + 2 subject types, each for four metrics
    assert len(summary) == 9 * 4
    assert list(summary.group.unique()) == ["all", "subject", "kind", "subject_type"]
    assert list(summary[summary.group == "subject"].value.unique()) == ["dog", "can", "clock"]


def test_every_label_carries_its_model(summary):
    assert metric_label("hpsv3", "toy HPSv3") == "HPS-v3 (toy HPSv3)"
    assert metric_label("dino", "facebook/dino-vits16") == "DINO (facebook/dino-vits16)"
    for metric, label in zip(summary.metric, summary.label, strict=True):
        assert label.endswith(f"({MODEL_LABELS[metric]})")
    with pytest.raises(ValueError, match="hpsv3"):
        summarize(synthetic_scores(), METRICS, {"dino": "x", "clip_i": "x", "clip_t": "x"})


def test_the_interval_is_seeded_and_contains_the_mean(scores, summary):
    again = summarize(scores, METRICS, MODEL_LABELS, n_boot=500, seed=0)
    pd.testing.assert_frame_equal(summary, again)
    other = summarize(scores, METRICS, MODEL_LABELS, n_boot=500, seed=1)
    assert not np.allclose(summary.ci_low, other.ci_low)
    assert (summary.ci_low <= summary["mean"]).all() and (summary["mean"] <= summary.ci_high).all()
    assert (summary.ci_low < summary.ci_high).all()


def test_a_groups_interval_does_not_depend_on_the_other_groups(scores, summary):
    dog = summarize(scores[scores.subject == "dog"], METRICS, MODEL_LABELS, n_boot=500, seed=0)
    for metric in METRICS:
        ours, alone = _select(summary, "subject", "dog", metric), _select(dog, "subject", "dog", metric)
        assert (ours.ci_low, ours.ci_high) == (alone.ci_low, alone.ci_high)


def test_the_interval_shrinks_as_items_grow():
    small = synthetic_scores(prompts=5, seed=3)
    large = synthetic_scores(prompts=80, seed=3)
    width = {}
    for name, table in (("small", small), ("large", large)):
        row = _select(summarize(table, ["dino"], MODEL_LABELS, n_boot=400), "all", "all", "dino")
        width[name] = row.ci_high - row.ci_low
    assert width["large"] < 0.5 * width["small"]


def test_equal_items_give_a_zero_width_interval():
    scores = synthetic_scores()
    per_image = np.tile([0.2, 0.4, 0.6, 0.8], len(scores) // 4)  # every item has the same four values
    scores["dino"] = per_image
    row = _select(summarize(scores, ["dino"], MODEL_LABELS), "all", "all", "dino")
    assert row["mean"] == pytest.approx(0.5)
    assert row.ci_low == pytest.approx(0.5) and row.ci_high == pytest.approx(0.5)


def test_the_bootstrap_matches_a_slow_loop_over_the_same_draws():
    # unequal image counts per item, so the image mean differs from the mean of item means
    scores = synthetic_scores(prompts=4)
    scores = scores[~((scores["item"] % 3 == 0) & (scores["image_index"] >= 2))]
    n_boot, level = 200, 0.9
    row = _select(
        summarize(scores, ["clip_t"], MODEL_LABELS, n_boot, seed=7, level=level), "all", "all", "clip_t"
    )
    items = sorted(scores["item"].unique())
    draws = group_rng(7, "all", "all").integers(0, len(items), size=(n_boot, len(items)))
    means = []
    for draw in draws:
        images = pd.concat([scores[scores["item"] == items[i]] for i in draw])
        means.append(images["clip_t"].mean())
    assert row.ci_low == pytest.approx(np.quantile(means, 0.05), rel=1e-12)
    assert row.ci_high == pytest.approx(np.quantile(means, 0.95), rel=1e-12)


def test_the_bootstrap_is_fast():
    scores = synthetic_scores(subjects=[(f"s{k}", "thing", k % 5 == 0) for k in range(30)], prompts=25)
    assert scores["item"].nunique() == 750
    start = time.perf_counter()
    summarize(scores, ["dino"], MODEL_LABELS, n_boot=1000)
    # 1 + 30 + 3 + 2 groups: the all group's 1000 x 750 resamples dominate
    assert time.perf_counter() - start < 3.0


def test_nan_and_empty_input_raise(scores):
    broken = scores.copy()
    broken.loc[[3, 7], "hpsv3"] = np.nan
    with pytest.raises(ValueError, match=r"'hpsv3': 2 of 60 rows"):
        summarize(broken, METRICS, MODEL_LABELS)
    with pytest.raises(ValueError, match="empty"):
        summarize(scores.iloc[:0], METRICS, MODEL_LABELS)
    with pytest.raises(ValueError, match="mixes models"):
        summarize(pd.concat([scores, scores.assign(model="other")]), METRICS, MODEL_LABELS)


def test_the_wide_summary_is_the_all_group(summary):
    wide = summary_wide(summary)
    assert len(wide) == 1
    label = "HPS-v3 (toy HPSv3)"
    assert list(wide.columns[:3]) == [
        "DINO (facebook/dino-vits16)",
        "DINO (facebook/dino-vits16) ci_low",
        "DINO (facebook/dino-vits16) ci_high",
    ]
    row = _select(summary, "all", "all", "hpsv3")
    assert wide.loc[0, label] == row["mean"] and wide.loc[0, f"{label} ci_high"] == row.ci_high
    assert (wide.loc[0, "images"], wide.loc[0, "items"]) == (60, 15)
    assert overall(summary)["hpsv3"] == (row["mean"], row.ci_low, row.ci_high)
