"""Model-free stand-ins for the identity and prompt rewards: check the check logic, read a base policy.

They are independent of the policy and of the zoo's reward models, deterministic, and cheap:

- :func:`color_identity` (identity role): cosine similarity of square-rooted soft RGB colour histograms
  (4 bins per channel, ``data.scorers.color_histogram``) of the central ``crop`` of the image and of the
  reference, where the toy world puts its subject. It sees colours only: it cannot tell a subject from a
  background of the same colour, nor shapes apart.
- :func:`phrase_prompt_reward` (prompt role): a nearest-centroid text-image model fitted on the toy SynCD.
  Each prompt phrase (a context such as "in the snow", an accessory such as "wearing a red hat", a property
  "a red {class}") gets the mean feature of the toy SynCD images captioned with it; a prompt's reward is the
  cosine of the image's feature with its phrase's centroid. The feature is the histogram of the central
  region beside that of the border (subject and background); a phrase that no toy SynCD image shows (a
  small world) is compared with the mean of all images, i.e. carries no information. Colour-blind
  changes (a "cube shaped" or "shiny" subject) are barely visible to it.

The zoo's real rewards (DINOv2 with segmentation, CLIP, HPSv3) replace both; these only give a rough,
independent read and known answers in tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from cgrpo_core.data.scorers import color_histogram
from cgrpo_core.toy.world.backgrounds import CONTEXTS
from cgrpo_core.toy.world.parts import ACCESSORIES
from cgrpo_core.toy.zoo.policy.data import _syncd_sets, edit_phrases

__all__ = ["color_identity", "phrase_of", "phrase_prompt_reward", "region_features"]


def _rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0  # (H, W, 3)


def _centre(height: int, width: int, crop: float) -> np.ndarray:
    """Boolean mask ``[H, W]`` of the central ``crop`` fraction of each side."""
    rows, cols = np.zeros(height, bool), np.zeros(width, bool)
    top, left = round(height * (1 - crop) / 2), round(width * (1 - crop) / 2)
    rows[top : height - top], cols[left : width - left] = True, True
    return rows[:, None] & cols[None, :]


def color_identity(
    images: Sequence[Image.Image], references: Sequence[Image.Image], crop: float = 0.6
) -> np.ndarray:
    """``[N]`` cosines in [0, 1] of the centre-crop colour histograms of image i and reference i."""
    out = []
    for image, reference in zip(images, references, strict=True):
        a, b = _rgb(image), _rgb(reference)
        ha = color_histogram(a[_centre(*a.shape[:2], crop)])
        hb = color_histogram(b[_centre(*b.shape[:2], crop)])
        out.append(float(ha @ hb))
    return np.asarray(out)


def region_features(image: Image.Image, crop: float = 0.5) -> np.ndarray:
    """Centre histogram beside border histogram, ``[2 * 64]``, unit norm."""
    pixels = _rgb(image)
    inside = _centre(*pixels.shape[:2], crop)
    feature = np.concatenate([color_histogram(pixels[inside]), color_histogram(pixels[~inside])])
    return feature / np.sqrt(2.0)


def phrase_of(prompt: str, edits: dict[str, str]) -> str:
    """The phrase a prompt asks for: its edit (property / accessory prompt), else its context phrase."""
    if prompt in edits:
        return edits[prompt]
    found = [p for p in (*CONTEXTS, *ACCESSORIES) if p in prompt]
    if not found:
        raise ValueError(f"prompt {prompt!r} names no toy-world context, accessory or property")
    return max(found, key=len)


def phrase_prompt_reward(world_dir: str | Path):
    """A prompt reward ``(images, prompts) -> [N]`` fitted on the world's toy SynCD (module docstring)."""
    edits = edit_phrases()
    root = Path(world_dir) / "syncd"
    sums: dict[str, np.ndarray] = {}
    for row in _syncd_sets(world_dir).itertuples():
        for name, caption in zip(row.images, row.prompts, strict=True):
            with Image.open(root / name) as image:
                feature = region_features(image)
            phrase = phrase_of(caption, edits)
            sums[phrase] = sums.get(phrase, 0.0) + feature
    centroids = {p: s / np.linalg.norm(s) for p, s in sums.items()}
    overall = sum(sums.values())
    overall = overall / np.linalg.norm(overall)

    def reward(images: Sequence[Image.Image], prompts: Sequence[str]) -> np.ndarray:
        out = []
        for image, prompt in zip(images, prompts, strict=True):
            centroid = centroids.get(phrase_of(prompt, edits), overall)
            out.append(float(region_features(image) @ centroid))
        return np.asarray(out)

    return reward
