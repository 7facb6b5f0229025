"""Constructed test images: a textured subject square on a chosen background, with its exact mask."""

from __future__ import annotations

import numpy as np
from PIL import Image

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 60, 220), "yellow": (230, 220, 30)}
SUBJECT = ((200, 40, 40), (240, 220, 40))  # a red square with a yellow dot lattice


def scene(
    background: tuple[int, int, int] | str = (128, 128, 128),
    box: tuple[int, int, int] = (16, 16, 28),
    size: int = 64,
    stripes: tuple[int, int, int] | None = None,
    subject: tuple[tuple[int, int, int], tuple[int, int, int]] = SUBJECT,
) -> tuple[Image.Image, np.ndarray]:
    """(image, boolean mask): the subject square at (x, y) with side s on a plain or striped background."""
    x, y, s = box
    fill = background if isinstance(background, tuple) else {"grey": (128, 128, 128)}[background]
    pixels = np.empty((size, size, 3), dtype=np.uint8)
    pixels[:] = fill
    if stripes is not None:
        pixels[::4] = stripes
        pixels[:, 1::5] = stripes
    patch = np.empty((s, s, 3), dtype=np.uint8)
    patch[:] = subject[0]
    patch[::3, ::3] = subject[1]
    pixels[y : y + s, x : x + s] = patch
    mask = np.zeros((size, size), dtype=bool)
    mask[y : y + s, x : x + s] = True
    return Image.fromarray(pixels), mask


def random_scene(rng: np.random.Generator, size: int = 64) -> tuple[Image.Image, np.ndarray]:
    """A scene with a random plain or striped background and a random subject box."""
    side = int(rng.integers(size // 4, size // 2))
    x, y = (int(v) for v in rng.integers(0, size - side, 2))
    background = tuple(int(v) for v in rng.integers(0, 256, 3))
    stripes = tuple(int(v) for v in rng.integers(0, 256, 3)) if rng.random() < 0.5 else None
    return scene(background, (x, y, side), size, stripes)


def shape_image(colour: str, rng: np.random.Generator, size: int = 32) -> Image.Image:
    """A plain square of a named colour at a random place on a random grey background (CLIP-T tests)."""
    pixels = np.empty((size, size, 3), dtype=np.uint8)
    pixels[:] = int(rng.integers(90, 160))
    side = int(rng.integers(size * 3 // 8, size * 3 // 4))
    x, y = (int(v) for v in rng.integers(0, size - side, 2))
    pixels[y : y + side, x : x + side] = COLOURS[colour]
    return Image.fromarray(pixels)


class MaskSegmenter:
    """A test segmenter returning masks it was given, looked up by image content (a mock in the
    Segmenter protocol); counts its calls."""

    needs_subjects = False

    def __init__(self, pairs: list[tuple[Image.Image, np.ndarray]]):
        self.masks = {im.tobytes(): m for im, m in pairs}
        self.calls = 0

    def __call__(self, images, subjects=None):
        self.calls += 1
        return [self.masks[im.tobytes()] for im in images]


def make_scoring_folder(root, n: int = 4, seed: int = 0):
    """A folder of ``n`` generated images, two reference images and a CSV manifest: (image dir, manifest)."""
    from pathlib import Path

    import pandas as pd

    root, rng = Path(root), np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "refs").mkdir(exist_ok=True)
    for i in range(n):
        random_scene(rng)[0].save(root / "images" / f"{i}.png")
    for k in range(2):
        random_scene(rng)[0].save(root / "refs" / f"r{k}.png")
    rows = [
        {
            "image": f"{i}.png",
            "prompt": f"a photo of a {list(COLOURS)[i % 4]} square",
            "subject": "square",
            "references": "refs/r0.png|refs/r1.png",
        }
        for i in range(n)
    ]
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "images", root / "manifest.csv"
