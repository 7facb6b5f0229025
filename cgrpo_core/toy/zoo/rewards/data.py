"""Toy world -> what the reward models train and are checked on: images, masks, captions, subject labels.

Training reads only what a user's SynCD download would hold: the toy SynCD's images, masks and captions,
through the data area's SynCD reader. A view's label is its set: the planted identity drifts and the
edited views of the toy SynCD are label noise, as real multi-view data has (``ground_truth.json`` is never
read for training). The checks read held-out data with its ground truth: ToyBench (30 subjects that the
toy SynCD never shows) and a second toy world generated with another seed (:func:`check_world`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cgrpo_core.data.dreambench import format_prompt
from cgrpo_core.data.syncd import read_syncd
from cgrpo_core.toy.world.config import ToyWorldConfig
from cgrpo_core.toy.world.generate import generate_toy_world
from cgrpo_core.toy.world.prompts import dreambench_templates
from cgrpo_core.toy.world.render import DEGRADATIONS, degrade
from cgrpo_core.toy.world.subjects import CLASSES
from cgrpo_core.toy.zoo.rewards.config import DegradationConfig

__all__ = [
    "ViewData",
    "bench_views",
    "degrade_view",
    "merge_views",
    "other_world",
    "syncd_views",
    "world_corpus",
]


@dataclass(frozen=True)
class ViewData:
    """N views: images (N, H, W, 3) uint8, subject masks (N, H, W) bool, captions, integer labels (N,)
    (the set or subject of each view), the names of the labels, each view's file (for reports) and,
    once a segmenter exists, its masks of the views (N, H, W) bool (what DINO-Seg will see)."""

    images: np.ndarray
    masks: np.ndarray
    captions: list[str]
    labels: np.ndarray
    names: list[str]
    files: list[str]
    predicted_masks: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.images)

    def pil(self, index: int) -> Image.Image:
        return Image.fromarray(self.images[index])

    def pil_mask(self, index: int) -> Image.Image:
        return Image.fromarray(self.masks[index].astype(np.uint8) * 255)

    def groups(self) -> list[np.ndarray]:
        """Indices of the views of each label (label order)."""
        return [np.flatnonzero(self.labels == k) for k in range(len(self.names))]


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as handle:
        return np.asarray(handle.convert("RGB"))


def _read_mask(path: Path) -> np.ndarray:
    with Image.open(path) as handle:
        return np.asarray(handle.convert("L")) > 127


def syncd_views(world_dir: str | Path) -> ViewData:
    """Every view of the toy SynCD under ``world_dir/syncd`` (labels: set index in set-id order)."""
    root = Path(world_dir) / "syncd"
    index = read_syncd(root)
    if index.issues:
        raise ValueError(f"{root}: the toy SynCD has unreadable sets, regenerate it: {index.issues[:3]}")
    images, masks, captions, labels, files = [], [], [], [], []
    for label, row in enumerate(index.sets.itertuples()):
        for image, mask, prompt in zip(row.images, row.masks, row.prompts, strict=True):
            images.append(_read_rgb(root / image))
            masks.append(_read_mask(root / mask))
            captions.append(prompt)
            labels.append(label)
            files.append(image)
    return ViewData(
        np.stack(images), np.stack(masks), captions, np.asarray(labels), list(index.sets["set_id"]), files
    )


def bench_views(world_dir: str | Path) -> ViewData:
    """ToyBench's images with masks (labels: subject index in name order; captions: the class name)."""
    root = Path(world_dir) / "toybench" / "dataset"
    truth = json.loads((Path(world_dir) / "ground_truth.json").read_text(encoding="utf-8"))
    subjects = sorted(truth["toybench_subjects"])
    images, masks, captions, labels, files = [], [], [], [], []
    for label, name in enumerate(subjects):
        paths = sorted(p for p in (root / name).glob("*.png"))
        if not paths:
            raise FileNotFoundError(f"{root / name}: no ToyBench image; regenerate the toy world")
        for path in paths:
            images.append(_read_rgb(path))
            masks.append(_read_mask(path.parent / "masks" / path.name))
            captions.append(truth["toybench_subjects"][name]["class_name"])
            labels.append(label)
            files.append(f"{name}/{path.name}")
    return ViewData(np.stack(images), np.stack(masks), captions, np.asarray(labels), subjects, files)


def other_world(world_dir: str | Path, out_dir: str | Path, seed: int, sets: int, workers: int = 1) -> Path:
    """A toy world like ``world_dir``'s (same resolution and shares) with another seed and ``sets`` SynCD
    sets, generated into ``out_dir`` unless it is already there (the checks' held-out world, the corpus)."""
    out = Path(out_dir)
    if (out / "world.json").is_file():
        return out
    config = json.loads((Path(world_dir) / "world.json").read_text(encoding="utf-8"))["config"]
    if config["seed"] == seed:
        raise ValueError(f"another toy world needs a seed other than the training world's ({seed})")
    cfg = ToyWorldConfig(
        **{**config, "seed": seed, "syncd_sets": sets, "bench_images": 1, "workers": workers}
    )
    generate_toy_world(cfg, out, progress=False)
    return out


def merge_views(*parts: ViewData) -> ViewData:
    """The views of several sources as one (labels and names kept apart per source)."""
    offsets = np.cumsum([0] + [len(p.names) for p in parts[:-1]])
    return ViewData(
        np.concatenate([p.images for p in parts]),
        np.concatenate([p.masks for p in parts]),
        [c for p in parts for c in p.captions],
        np.concatenate([p.labels + off for p, off in zip(parts, offsets, strict=True)]),
        [n for p in parts for n in p.names],
        [f for p in parts for f in p.files],
    )


def world_corpus(captions: list[str]) -> list[str]:
    """Tokenizer text: the captions plus every DreamBench prompt of every toy class (what ToyBench asks)."""
    table = dreambench_templates()
    prompts = [
        format_prompt(t, c)
        for c in sorted(CLASSES)
        for t in (table.live_templates if CLASSES[c].live else table.object_templates)
    ]
    return sorted(set(captions)) + prompts


def degrade_view(
    image: np.ndarray, rng: np.random.Generator, cfg: DegradationConfig
) -> tuple[np.ndarray, str]:
    """A degraded copy of a uint8 (H, W, 3) render and the degradation's name (see DegradationConfig)."""
    kind = sorted(DEGRADATIONS)[int(rng.integers(len(DEGRADATIONS)))]
    return degrade(image, kind, rng, float(rng.uniform(cfg.noise_min, cfg.noise_max))), kind
