"""Small builders of SynCD-layout folders for the data tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(
    path: Path, color=(200, 30, 30), size: int = 16, square: tuple[int, int, int, int] | None = None
):
    """A flat-colour RGB image (optionally with a white square x0, y0, x1, y1), as PNG or JPEG by suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((size, size, 3), np.uint8) + np.array(color, np.uint8)
    if square:
        x0, y0, x1, y1 = square
        array[y0:y1, x0:x1] = 255
    Image.fromarray(array).save(path)


def write_mask(path: Path, box=(4, 4, 12, 12), size: int = 16):
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((size, size), np.uint8)
    x0, y0, x1, y1 = box
    array[y0:y1, x0:x1] = 255
    Image.fromarray(array).save(path)


def write_set(root: Path, set_id: str, n: int = 3, colors=None, suffix: str = ".png", **item) -> Path:
    """One ``<root>/<set_id>/`` folder in our per-set layout: images, masks/, metadata.json ([item])."""
    folder = root / set_id
    colors = colors or [(200, 30, 30)] * n
    for k in range(n):
        write_image(folder / f"{k}{suffix}", colors[k])
        write_mask(folder / "masks" / f"{k}.png")
    entry = {
        "filenames": [f"{k}{suffix}" for k in range(n)],
        "prompts": [f"a red cup view {k}" for k in range(n)],
    }
    entry.update(item)
    (folder / "metadata.json").write_text(json.dumps([entry]))
    return folder
