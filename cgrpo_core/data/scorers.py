"""Scorers by name for the SynCD scorer (data/scoring.py): model-free baselines, and the registry.

The paper scores identity with DINOv2 ViT-L/14 and aesthetics with the LAION predictor; those (and the toy
zoo's tiny versions) come from the rewards area and are added to :data:`SCORERS` there by the flow that
builds them. The two baselines here need no weights and are real, deterministic measurements:

- ``histogram`` (identity): a subject-crop embedding made of three unit blocks: the colour distribution of
  the subject's pixels (soft 4x4x4 RGB histogram, square-rooted), its silhouette (the crop mask at 8x8,
  centred) and a coarse picture of the crop (6x6 RGB, centred), weighted 1 / 0.5 / 0.35, so the cosine
  of two embeddings is the mean of the block cosines weighted 1 / 0.25 / 0.12. Colour and silhouette
  carry the identity; the crop picture keeps different views of one subject below 0.98 and puts pixel
  copies near 1.
- ``noise`` (aesthetic): 10 minus the image's noise level: per colour channel the 10th percentile of the
  absolute Laplacian (levels 0-255; saturated pixels left out, clipped noise is flat), median over the
  channels, divided by 1.2: flat regions of a clean render have none, so it scores
  ~10; noise leaves no flat pixel, so heavy noise scores low. A stand-in for an aesthetic model on the
  toy world only; it knows nothing of composition or taste.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

__all__ = ["SCORERS", "build_scorer", "histogram_embedder", "noise_aesthetic"]

_BINS = 4
_WEIGHTS = (1.0, 0.5, 0.35)  # colour, silhouette, crop picture


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x)
    return x / norm if norm > 0 else x


def _color_block(pixels: np.ndarray) -> np.ndarray:
    """Soft RGB histogram of (P, 3) pixels in [0, 1] (linear interpolation between bin centres)."""
    pos = np.clip(pixels * _BINS - 0.5, 0, _BINS - 1)  # (P, 3) continuous bin coordinates
    low = np.floor(pos).astype(int).clip(0, _BINS - 2) if _BINS > 1 else np.zeros_like(pos, int)
    frac = pos - low
    hist = np.zeros((_BINS,) * 3)
    for corner in range(8):
        bits = [(corner >> k) & 1 for k in range(3)]
        weight = np.prod([frac[:, k] if b else 1 - frac[:, k] for k, b in enumerate(bits)], axis=0)
        np.add.at(hist, tuple(low[:, k] + b for k, b in enumerate(bits)), weight)
    return _unit(np.sqrt(hist.reshape(-1) / max(len(pixels), 1)))


def _embed_one(crop: Image.Image, mask: Image.Image) -> np.ndarray:
    rgb = np.asarray(crop.convert("RGB"), dtype=np.float64) / 255.0  # (H, W, 3)
    on = np.asarray(mask.convert("L").resize(crop.size), dtype=np.float64) / 255.0 > 0.5  # (H, W)
    pixels = rgb[on] if on.any() else rgb.reshape(-1, 3)
    silhouette = np.asarray(mask.convert("L").resize((8, 8), Image.BOX), dtype=np.float64).reshape(-1)
    picture = np.asarray(crop.convert("RGB").resize((6, 6), Image.BOX), dtype=np.float64).reshape(-1)
    blocks = (_color_block(pixels), _unit(silhouette - silhouette.mean()), _unit(picture - picture.mean()))
    return np.concatenate([w * b for w, b in zip(_WEIGHTS, blocks, strict=True)]) / np.linalg.norm(_WEIGHTS)


def histogram_embedder(crops: Sequence[Image.Image], masks: Sequence[Image.Image]) -> np.ndarray:
    """(N, 64 + 64 + 108) embeddings of subject crops (see the module docstring)."""
    return np.stack([_embed_one(c, m) for c, m in zip(crops, masks, strict=True)])


def _noise_level(c: np.ndarray) -> float:
    """10th percentile of |Laplacian| of one channel (H, W) in grey levels, saturated pixels left out."""
    lap = 4 * c[1:-1, 1:-1] - c[:-2, 1:-1] - c[2:, 1:-1] - c[1:-1, :-2] - c[1:-1, 2:]
    centre = c[1:-1, 1:-1]
    unclipped = np.abs(lap)[(centre > 2) & (centre < 253)]  # noise clipped at black/white is flat
    return float(np.quantile(unclipped, 0.1)) if unclipped.size else 0.0


def noise_aesthetic(images: Sequence[Image.Image]) -> np.ndarray:
    """(N,) scores: 10 - (median over R, G, B of the channel's noise level) / 1.2, clipped to [0, 10]."""
    out = []
    for image in images:
        rgb = np.asarray(image.convert("RGB"), dtype=np.float64)  # (H, W, 3) in [0, 255]
        level = float(np.median([_noise_level(rgb[..., c]) for c in range(3)]))
        out.append(float(np.clip(10.0 - level / 1.2, 0.0, 10.0)))
    return np.asarray(out)


# name -> builder (no arguments) of a scorer callable: identity scorers embed, aesthetic scorers score.
SCORERS: dict[str, Callable[[], Callable]] = {
    "histogram": lambda: histogram_embedder,
    "noise": lambda: noise_aesthetic,
}


def build_scorer(name: str) -> Callable:
    """The scorer callable registered as ``name``; an unknown name lists the registered ones."""
    if name not in SCORERS:
        raise ValueError(
            f"unknown scorer {name!r}; registered: {sorted(SCORERS)} (model scorers such as DINOv2 and the "
            "LAION aesthetic predictor are registered by the rewards area / toy zoo)"
        )
    return SCORERS[name]()
