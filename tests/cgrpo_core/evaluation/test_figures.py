"""Benchmark figures: the trade-off plot, training curves and a grid of the scored images."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
from matplotlib.container import ErrorbarContainer
from PIL import Image

from cgrpo_core.evaluation.figures import curves_figure, grid_rows, sample_grid_from_scores, tradeoff_figure
from cgrpo_core.evaluation.grid import TEXT_TILES
from tests.cgrpo_core.evaluation.test_aggregate import MODEL_LABELS, SUBJECTS, synthetic_scores


def test_tradeoff_figure_has_one_marker_per_model():
    points = {
        "UNO (Base)": {
            "dino": (0.70, 0.68, 0.72),
            "clip_i": (0.80, 0.79, 0.81),
            "clip_t": (0.30, 0.29, 0.31),
            "hpsv3": (7.0, 6.8, 7.2),
        },
        "Customized-GRPO": {
            "dino": (0.75, 0.73, 0.77),
            "clip_i": (0.82, 0.81, 0.83),
            "clip_t": (0.29, 0.28, 0.30),
            "hpsv3": (7.5, 7.3, 7.7),
        },
        "DINO only": {"dino": (0.9, 0.9, 0.9), "clip_i": (0.9, 0.85, 0.95), "clip_t": (0.2, 0.19, 0.21)},
    }
    fig = tradeoff_figure(points, MODEL_LABELS)
    left, right = fig.axes
    assert [len([c for c in ax.containers if isinstance(c, ErrorbarContainer)]) for ax in fig.axes] == [2, 3]
    assert left.get_xlabel().startswith("DINO (facebook/dino-vits16)")
    assert right.get_ylabel().startswith("CLIP-T (openai/clip-vit-base-patch32)")
    assert {t.get_text() for t in right.texts} == set(points)
    plt.close(fig)


def test_curves_figure_has_one_line_per_row_and_panel():
    short = [{"reward/dino_seg_mean": 0.1 * k, "reward/hpsv3_mean": k} for k in range(10)]
    long = [{"reward/dino_seg_mean": 0.01 * k} for k in range(30)]  # no HPS-v3 key
    fig = curves_figure({"a": short, "b": long}, ["reward/dino_seg_mean", "reward/hpsv3_mean"], "rewards")
    dino, hps = fig.axes
    assert len(dino.lines) == 1 + 2  # the long curve: raw and its moving average
    assert list(dino.lines[0].get_xdata()) == list(range(1, 11))  # steps are 1-based
    assert len(hps.lines) == 1
    plt.close(fig)
    with pytest.raises(ValueError, match="key"):
        curves_figure({"a": short}, [], "x")


def test_grid_rows_cover_every_kind_with_distinct_subjects():
    scores = synthetic_scores(subjects=[(f"s{k}", "thing", False) for k in range(12)], prompts=6, images=1)
    chosen = grid_rows(scores, items_per_kind=2)
    items = scores.drop_duplicates("item").set_index("item").loc[chosen]
    assert list(items.kind) == ["recontextualization"] * 2 + ["accessorization"] * 2 + ["property"] * 2
    assert items.subject.nunique() == 6
    assert grid_rows(scores.sample(frac=1.0, random_state=0), 2) == chosen  # order of the table is irrelevant


def test_sample_grid_reads_the_scored_images(tmp_path):
    scores = synthetic_scores()
    for k, name in enumerate(scores.file_name):
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (16, 16), (10 * (k % 25), 0, 0)).save(path)
    references = {}
    for subject, _, _ in SUBJECTS:
        references[subject] = tmp_path / f"{subject}.png"
        Image.new("RGB", (20, 20), "blue").save(references[subject])
    tile = 32
    grid = sample_grid_from_scores(scores, tmp_path, references, items_per_kind=1, tile=tile)
    # three kinds, one item each; columns: reference | prompt (TEXT_TILES wide) | 4 images
    assert grid.size == (tile * (1 + TEXT_TILES + 4), tile * 3)
    chosen = grid_rows(scores, 1)
    first = scores[(scores["item"] == chosen[0]) & (scores["image_index"] == 0)].file_name.iloc[0]
    with Image.open(tmp_path / first) as image:
        assert grid.getpixel(((1 + TEXT_TILES) * tile + 1, 1)) == image.getpixel((0, 0))
    assert grid.getpixel((1, 1)) == (0, 0, 255)
    with pytest.raises(ValueError, match="dog"):
        sample_grid_from_scores(scores, tmp_path, {"can": references["can"]}, items_per_kind=1)


def test_curves_figure_joins_a_sparse_check_and_starts_it_at_step_0():
    history = [{"reward/dino_seg_mean": 0.1 * k} for k in range(1, 21)]
    for step, value in ((10, 0.5), (20, 0.6)):  # a held-out check every 10 steps
        history[step - 1]["heldout/dino"] = value
    fig = curves_figure(
        {"a": history, "b": history}, ["heldout/dino"], "held-out", starts={"a": {"heldout/dino": 0.4}}
    )
    (ax,) = fig.axes
    with_start, without = ax.lines
    assert list(with_start.get_xdata()) == [0, 10, 20]
    assert list(with_start.get_ydata()) == [0.4, 0.5, 0.6]
    assert list(without.get_xdata()) == [10, 20]  # no check before the first step: none drawn
    plt.close(fig)
