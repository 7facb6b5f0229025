"""Training data of the toy VAE and base policy, read from a toy world's SynCD (never its ToyBench).

- The VAE trains on every toy SynCD image.
- The base policy trains on (reference view, target view, target caption) pairs of one set, as UNO trains
  on its subject-consistent pairs (UNO ``train.py``: ``ref_imgs`` -> ``img`` with its ``txt``): every
  ordered pair of distinct views of a set, except that a view whose caption is a DreamBench property or
  accessory prompt ("a purple dog", "a cat wearing a red hat") shows an edited subject and is only ever a
  target (toy-world convention, docs/data.md), never a reference.

The sets are not filtered: like UNO, whose own synthetic pairs were not cleaned by our filter, the base
policy sees the toy SynCD's planted defects (identity drift, near duplicates, low quality). Near
duplicates teach it to copy the reference's context and drifted views to drift from the identity: the
imperfect starting point the paper's RL needs. ``ground_truth.json`` is never read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from cgrpo_core.data.dreambench import bench_files, format_prompt, read_dreambench
from cgrpo_core.data.syncd import read_syncd
from cgrpo_core.toy.world.prompts import dreambench_templates, spec_for_template
from cgrpo_core.toy.world.subjects import CLASSES

__all__ = [
    "TrainingPair",
    "edit_phrases",
    "load_pixels",
    "toy_captions",
    "training_images",
    "training_pairs",
    "world_resolution",
]


@dataclass(frozen=True)
class TrainingPair:
    """One flow-matching example: generate ``target`` from ``reference`` and ``caption`` (target's)."""

    set_id: str
    reference: Path
    target: Path
    caption: str


def _world_json(world_dir: str | Path) -> dict:
    path = Path(world_dir) / "world.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {world_dir} is not a toy world; generate one with "
            "cgrpo_core.toy.world.generate.generate_toy_world (or the `toy-world` flow)"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def world_resolution(world_dir: str | Path) -> int:
    """The toy world's image side in pixels (world.json)."""
    return int(_world_json(world_dir)["config"]["resolution"])


def _syncd_sets(world_dir: str | Path):
    index = read_syncd(Path(world_dir) / "syncd")
    if index.issues:
        first = index.issues[0]
        raise ValueError(
            f"toy SynCD under {world_dir} has {len(index.issues)} unreadable entries (first: {first.path}: "
            f"{first.reason}); regenerate the toy world"
        )
    return index.sets


def training_images(world_dir: str | Path) -> list[Path]:
    """Every toy SynCD image (VAE training data), in set order."""
    root = (Path(world_dir) / "syncd").resolve()
    return [root / name for images in _syncd_sets(world_dir)["images"] for name in images]


def edit_phrases() -> dict[str, str]:
    """Every DreamBench property / accessory prompt for every toy class -> what it asks for.

    ``"a purple dog"`` -> ``"purple"``, ``"a cat wearing a red hat"`` -> ``"wearing a red hat"``: the
    captions of edited views.
    """
    table = dreambench_templates()
    out = {}
    for template in (*table.object_templates, *table.live_templates):
        spec = spec_for_template(template)
        if spec.kind != "recontextualization":
            out |= {format_prompt(template, name): spec.accessory or spec.prop for name in CLASSES}
    return out


def training_pairs(world_dir: str | Path) -> list[TrainingPair]:
    """Every ordered pair (reference i, target j != i) of a set, edited views never references."""
    root = (Path(world_dir) / "syncd").resolve()
    edited = edit_phrases()
    pairs = []
    for row in _syncd_sets(world_dir).itertuples():
        views = [(root / image, caption) for image, caption in zip(row.images, row.prompts, strict=True)]
        for i, (reference, ref_caption) in enumerate(views):
            if ref_caption in edited:
                continue
            for j, (target, caption) in enumerate(views):
                if j != i:
                    pairs.append(TrainingPair(row.set_id, reference, target, caption))
    if not pairs:
        raise ValueError(f"toy SynCD under {world_dir} has no set with two views: nothing to train on")
    return pairs


def toy_captions(world_dir: str | Path) -> list[str]:
    """Toy SynCD captions plus ToyBench prompts: the corpus of the tiny tokenizers."""
    captions = [c for prompts in _syncd_sets(world_dir)["prompts"] for c in prompts]
    root, prompts_file, protocol = bench_files(None, None, None, toy_world=world_dir)
    if prompts_file.is_file():
        captions += list(read_dreambench(root, prompts_file, protocol)["prompt"])
    return list(dict.fromkeys(captions))


def load_pixels(paths: list[Path], resolution: int) -> Tensor:
    """Images as ``[N, 3, resolution, resolution]`` float32 in [-1, 1] (resized with Lanczos if needed)."""
    out = torch.empty(len(paths), 3, resolution, resolution)
    for k, path in enumerate(paths):
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        if rgb.size != (resolution, resolution):
            rgb = rgb.resize((resolution, resolution), Image.LANCZOS)
        array = np.asarray(rgb, dtype=np.float32)  # (H, W, 3)
        out[k] = torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1.0
    return out
