"""Sample grids and training-curve figures."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from cgrpo_core.evaluation.grid import grid_image, grid_items, sample_grid
from cgrpo_core.plots import plot_training_curve
from cgrpo_core.policy import PolicyConfig, load_policy
from cgrpo_core.toy.zoo.policy.checks import toybench_items
from tests.cgrpo_core.toy.zoo.policy.test_base_policy import TEST_SAMPLER


def test_grid_layout_reference_prompt_samples():
    red, blue = Image.new("RGB", (32, 32), (255, 0, 0)), Image.new("RGB", (32, 32), (0, 0, 255))
    grid = grid_image([red, blue], ["a red thing", "a blue thing"], [[blue] * 4, [red] * 4], tile=64)
    assert grid.size == (64 * (1 + 2 + 4), 64 * 2)
    pixels = np.asarray(grid)
    assert tuple(pixels[10, 10]) == (255, 0, 0) and tuple(pixels[64 + 10, 10]) == (0, 0, 255)  # references
    assert tuple(pixels[10, 64 * 3 + 10]) == (0, 0, 255) and tuple(pixels[74, 64 * 6 + 10]) == (255, 0, 0)
    text = pixels[:64, 64:192]
    assert (text == 255).mean() > 0.5 and (text < 128).any()  # white tile with dark text


def test_grid_needs_matching_rows():
    with pytest.raises(ValueError, match="one reference"):
        grid_image([Image.new("RGB", (8, 8))], [], [[]])


def test_grid_items_distinct_subjects_and_kinds(small_world):
    chosen = grid_items(toybench_items(small_world), rows=6)
    assert len(chosen) == 6 and len({it.subject for it in chosen}) == 6
    assert len({it.kind for it in chosen}) >= 2


def test_sample_grid_of_the_trained_policy(trained, small_world):
    folder, _, _ = trained
    policy = load_policy(PolicyConfig(model_folder=str(folder), uno_lora=None, dtype="float32", lora_rank=0))
    items = grid_items(toybench_items(small_world), rows=3)
    grid = sample_grid(policy, items, TEST_SAMPLER, seed=0, samples_per_item=4, tile=48)
    assert grid.size == (48 * 7, 48 * 3)


def test_training_curve_figure():
    fig = plot_training_curve([(s, 1.0 / (s + 1)) for s in range(200)], "toy VAE")
    assert isinstance(fig, Figure) and fig.axes[0].get_yscale() == "log"
    with pytest.raises(ValueError, match="empty"):
        plot_training_curve([], "x")
