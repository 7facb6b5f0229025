"""Scorers by name for the SynCD scorer (data/scoring.py): the model scorers, model-free baselines, registry.

:data:`SCORERS` maps a name to a builder ``(ScoreConfig) -> scorer``. The model scorers read their weights
from the score config through the rewards area's loaders, so the same names serve the paper profile (SynCD's
DINOv2 ViT-L/14 with registers and the LAION predictor, from their folders or the hub cache) and the toy
profile (the toy reward zoo's DINO-Seg model and aesthetic head, :func:`with_zoo_models`):

- ``embedding`` (identity): ``rewards.embeddings.subject_embedder(score.identity_model)``, unit embeddings
  of the subject crops (with the mask applied first when ``identity_model.segment`` is not "none");
- ``laion_aesthetic``: ``rewards.aesthetic.aesthetic_scorer`` with ``score.aesthetic_model``.

The two baselines need no weights and are real, deterministic measurements:

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

from cgrpo_core.data.config import ScoreConfig
from cgrpo_core.rewards.config import RewardModels

__all__ = [
    "MODEL_SCORERS",
    "SCORERS",
    "build_scorer",
    "color_histogram",
    "histogram_embedder",
    "noise_aesthetic",
    "with_zoo_models",
]

_BINS = 4
_WEIGHTS = (1.0, 0.5, 0.35)  # colour, silhouette, crop picture


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x)
    return x / norm if norm > 0 else x


def color_histogram(pixels: np.ndarray) -> np.ndarray:
    """Unit-norm, square-rooted soft RGB histogram ``[4**3]`` of pixels ``[P, 3]`` in [0, 1]: each pixel's
    weight is split between the two nearest bin centres per channel (trilinear)."""
    pos = np.clip(pixels * _BINS - 0.5, 0, _BINS - 1)  # (P, 3) continuous bin coordinates
    low = np.minimum(np.floor(pos).astype(int), _BINS - 2)
    frac = pos - low
    hist = np.zeros((_BINS,) * 3)
    for corner in range(8):
        bits = [(corner >> k) & 1 for k in range(3)]
        weight = np.prod([frac[:, k] if b else 1 - frac[:, k] for k, b in enumerate(bits)], axis=0)
        np.add.at(hist, tuple(low[:, k] + b for k, b in enumerate(bits)), weight)
    return _unit(np.sqrt(hist.reshape(-1)))


def _embed_one(crop: Image.Image, mask: Image.Image) -> np.ndarray:
    rgb = np.asarray(crop.convert("RGB"), dtype=np.float64) / 255.0  # (H, W, 3)
    on = np.asarray(mask.convert("L").resize(crop.size), dtype=np.float64) / 255.0 > 0.5  # (H, W)
    pixels = rgb[on] if on.any() else rgb.reshape(-1, 3)
    silhouette = np.asarray(mask.convert("L").resize((8, 8), Image.BOX), dtype=np.float64).reshape(-1)
    picture = np.asarray(crop.convert("RGB").resize((6, 6), Image.BOX), dtype=np.float64).reshape(-1)
    blocks = (color_histogram(pixels), _unit(silhouette - silhouette.mean()), _unit(picture - picture.mean()))
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


# The model-backed scorers import their backbones (transformers) when built, not with this module: a
# config that only names them (cgrpo_core.toy.zoo.weights) stays light to import.
def _embedding(cfg: ScoreConfig) -> Callable:
    from cgrpo_core.rewards.embeddings import subject_embedder

    return subject_embedder(cfg.identity_model)


def _laion_aesthetic(cfg: ScoreConfig) -> Callable:
    from cgrpo_core.rewards.aesthetic import aesthetic_scorer

    return aesthetic_scorer(RewardModels(aesthetic=cfg.aesthetic_model))


# name -> builder of a scorer callable from the score config: identity scorers embed, aesthetic ones score.
SCORERS: dict[str, Callable[[ScoreConfig], Callable]] = {
    "embedding": _embedding,
    "laion_aesthetic": _laion_aesthetic,
    "histogram": lambda cfg: histogram_embedder,
    "noise": lambda cfg: noise_aesthetic,
}
MODEL_SCORERS = ("embedding", "laion_aesthetic")  # the scorers that read model weights


def build_scorer(name: str, cfg: ScoreConfig | None = None) -> Callable:
    """The scorer registered as ``name``, built from ``cfg`` (default: ScoreConfig(), the paper's models);
    an unknown name lists the registered ones."""
    if name not in SCORERS:
        raise ValueError(f"unknown scorer {name!r}; registered: {sorted(SCORERS)}")
    return SCORERS[name](cfg or ScoreConfig())


def with_zoo_models(cfg: ScoreConfig, models: RewardModels) -> ScoreConfig:
    """``cfg`` scoring with a toy reward zoo's models (``toy.zoo.rewards.build.zoo_reward_models``): its
    DINO-Seg model on masked subject crops (the toy DINOv2 is trained on them) and its aesthetic head; their
    ids carry the zoo's content key."""
    return cfg.model_copy(update={"identity_model": models.dino_seg, "aesthetic_model": models.aesthetic})
