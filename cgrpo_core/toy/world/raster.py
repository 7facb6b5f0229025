"""A tiny deterministic rasteriser: polygons on a supersampled float canvas, box-filtered down.

Coordinates are fractions of the image side (x right, y down). Shapes are filled polygons (PIL's
ImageDraw at the supersampled resolution), so the same inputs always give the same pixels.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["Canvas", "circle_points", "rgb"]


def rgb(color: tuple[int, int, int] | np.ndarray, scale: float = 1.0) -> np.ndarray:
    """A colour as float RGB in [0, 1], optionally brightened/darkened by ``scale``."""
    return np.clip(np.asarray(color, dtype=np.float32) / 255.0 * scale, 0.0, 1.0)


def circle_points(
    cx: float,
    cy: float,
    rx: float,
    ry: float | None = None,
    n: int = 28,
    start: float = 0.0,
    stop: float = 2 * np.pi,
) -> np.ndarray:
    """Points of an ellipse (or an arc from ``start`` to ``stop``), shape (n, 2)."""
    t = np.linspace(start, stop, n, endpoint=stop - start < 2 * np.pi - 1e-9)
    return np.stack([cx + rx * np.cos(t), cy + (rx if ry is None else ry) * np.sin(t)], axis=1)


class Canvas:
    """An RGB canvas of ``size * supersample`` pixels per side plus the subject's coverage mask."""

    def __init__(self, size: int, supersample: int):
        self.size, self.ss = size, supersample
        self.n = size * supersample
        self.rgb = np.zeros((self.n, self.n, 3), dtype=np.float32)  # (N, N, 3) in [0, 1]
        self.subject = np.zeros((self.n, self.n), dtype=bool)  # (N, N): visible subject pixels
        centers = (np.arange(self.n, dtype=np.float32) + 0.5) / self.n
        self.y, self.x = np.meshgrid(centers, centers, indexing="ij")  # (N, N) each, in [0, 1]

    def polygon(self, points: np.ndarray) -> np.ndarray:
        """Boolean (N, N) mask of a filled polygon given in image fractions, shape (K, 2)."""
        image = Image.new("L", (self.n, self.n), 0)
        ImageDraw.Draw(image).polygon([(float(x) * self.n, float(y) * self.n) for x, y in points], fill=255)
        return np.asarray(image) > 127

    def rect(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        return (self.x >= x0) & (self.x < x1) & (self.y >= y0) & (self.y < y1)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float | None = None) -> np.ndarray:
        ry = rx if ry is None else ry
        return ((self.x - cx) / rx) ** 2 + ((self.y - cy) / ry) ** 2 <= 1.0

    def fill(self, color: np.ndarray) -> None:
        self.rgb[:] = color

    def gradient(self, top: np.ndarray, bottom: np.ndarray, y0: float = 0.0, y1: float = 1.0) -> None:
        """A vertical gradient from ``top`` (at y0) to ``bottom`` (at y1) over the rows y0..y1."""
        t = np.clip((self.y - y0) / max(y1 - y0, 1e-6), 0, 1)[..., None]
        rows = (self.y >= y0) & (self.y < y1)
        self.rgb[rows] = ((1 - t) * top + t * bottom)[rows]

    def paint(
        self, mask: np.ndarray, color: np.ndarray, subject: bool | None = None, alpha: float = 1.0
    ) -> None:
        """Paint ``color`` (RGB, or an (N, N, 3) texture) where ``mask``; mark/unmark it as subject."""
        value = color[mask] if np.ndim(color) == 3 else color
        self.rgb[mask] = (1 - alpha) * self.rgb[mask] + alpha * value
        if subject is True:
            self.subject |= mask
        elif subject is False:
            self.subject &= ~mask

    def dilate(self, mask: np.ndarray, radius: int) -> np.ndarray:
        out = mask.copy()
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                if dx * dx + dy * dy <= radius * radius:
                    out |= np.roll(np.roll(mask, dy, axis=0), dx, axis=1)
        return out

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """(image uint8 (S, S, 3), mask uint8 (S, S) in {0, 255}): box-filtered, mask = coverage >= 0.5."""
        s, k = self.size, self.ss
        image = self.rgb.reshape(s, k, s, k, 3).mean(axis=(1, 3))
        coverage = self.subject.reshape(s, k, s, k).mean(axis=(1, 3))
        return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), np.where(coverage >= 0.5, 255, 0).astype(
            np.uint8
        )
