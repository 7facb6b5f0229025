"""Model-free baseline scorers: hand-checked values and the properties the toy filter relies on."""

import numpy as np
import pytest
from PIL import Image

from cgrpo_core.data.scorers import SCORERS, build_scorer, histogram_embedder, noise_aesthetic
from cgrpo_core.data.scoring import pairwise_upper


def flat(color, size=32):
    return Image.fromarray(np.zeros((size, size, 3), np.uint8) + np.array(color, np.uint8))


def disc(size=32, radius=10):
    yy, xx = np.mgrid[:size, :size]
    return Image.fromarray(
        np.where((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < radius**2, 255, 0).astype(np.uint8)
    )


def test_noise_aesthetic_hand_values():
    assert noise_aesthetic([flat((120, 40, 200))])[0] == 10.0  # no Laplacian anywhere
    yy, xx = np.mgrid[:32, :32]
    board = (100 + (yy + xx) % 2).astype(np.uint8)  # checkerboard 100/101: |Laplacian| = 4 * 1 everywhere
    assert noise_aesthetic([Image.fromarray(np.stack([board] * 3, -1))])[0] == pytest.approx(10 - 4 / 1.2)
    white = np.full((32, 32, 3), 255, np.uint8)
    assert noise_aesthetic([Image.fromarray(white)])[0] == 10.0  # saturated pixels are left out
    noisy = np.clip(np.random.default_rng(0).normal(128, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
    assert noise_aesthetic([Image.fromarray(noisy)])[0] < 3.0


def test_histogram_embedder_separates_copies_views_and_identities():
    red, same, other = flat((200, 40, 40)), flat((200, 40, 40)), flat((40, 40, 200))
    emb = histogram_embedder([red, same, other], [disc(), disc(), disc()])
    sims = pairwise_upper(emb)
    assert sims[0][1] == pytest.approx(1.0)  # a pixel copy
    # a blue subject with the same silhouette and crop layout. Colour histograms: no common cell (cos 0);
    # silhouettes equal (cos 1, weight 0.5^2); crop pictures of flat colours, mean-centred per image:
    # red -> (2a, -a, -a), blue -> (-a, -a, 2a) per pixel, cos = (-2 + 1 - 2) / 6 = -0.5 (weight 0.35^2)
    expected = (0.0 + 0.25 * 1.0 + 0.1225 * -0.5) / (1 + 0.25 + 0.1225)
    assert sims[0][2] == pytest.approx(expected, abs=1e-9)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0)


def test_registry_and_unknown_names():
    assert set(SCORERS) == {"embedding", "laion_aesthetic", "histogram", "noise"}
    assert build_scorer("noise") is noise_aesthetic and build_scorer("histogram") is histogram_embedder
    with pytest.raises(ValueError, match=r"unknown scorer 'dinov2'; registered: \['embedding', 'histogram'"):
        build_scorer("dinov2")
