"""Small shared inputs of the policy tests."""

from __future__ import annotations

import numpy as np
from PIL import Image

from cgrpo_core.config import experiment_config

# The test profile's sampler: 4 steps, 32 px (4x4 tokens with the tiny 4x VAE).
TEST_SAMPLER = experiment_config("test").sampler


def solid(color: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> Image.Image:
    return Image.new("RGB", size, color)


def checkerboard(size: int = 32, cell: int = 4) -> Image.Image:
    yy, xx = np.mgrid[:size, :size]
    board = (((yy // cell) + (xx // cell)) % 2 * 255).astype(np.uint8)
    return Image.fromarray(np.stack([board, 255 - board, board // 2], axis=-1))
