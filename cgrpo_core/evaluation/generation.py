"""Benchmark items and their images: the reading of DreamBench (or ToyBench) into items, and ODE sampling.

Every image has its own initial noise, drawn from a generator seeded by the evaluation seed, the item
(subject and prompt) and the image's index within the item (:func:`image_seed`). So an item's images do
not depend on which batch the item fell in, on which items were evaluated with it, or on the model: two
models evaluated with one seed see the same noise for the same image (paired comparisons).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from cgrpo_core.data.dreambench import read_dreambench
from cgrpo_core.policy import (
    Condition,
    Policy,
    SamplerConfig,
    decode_latents,
    encode_condition,
    sample,
    to_pil,
)
from cgrpo_core.policy.sampling import initial_noise

__all__ = [
    "BenchItem",
    "benchmark_items",
    "generate_images",
    "generate_samples",
    "image_noise",
    "image_seed",
]


@dataclass(frozen=True)
class BenchItem:
    """One evaluation item: a subject's reference image and one of its 25 prompts."""

    subject: str
    class_name: str
    live: bool
    prompt_index: int  # 0-24 in DreamBench's object or live-subject list
    kind: str  # recontextualization, accessorization, property
    prompt: str
    reference: Path


def benchmark_items(
    root: str | Path,
    prompts_file: str | Path,
    protocol_file: str | Path | None,
    prompts_per_subject: int | None = None,
    subjects: int | None = None,
) -> list[BenchItem]:
    """The benchmark's items in protocol order (data.dreambench); ``prompts_per_subject`` evenly spaced
    prompts of each subject (None: all 25) of ``subjects`` subjects evenly spaced in protocol order, the
    first and the last included (None: every subject)."""
    frame = read_dreambench(root, prompts_file, protocol_file)
    if prompts_per_subject is not None:
        keep = set(np.linspace(0, 24, prompts_per_subject).round().astype(int).tolist())
        frame = frame[frame["prompt_index"].isin(keep)]
    names = list(dict.fromkeys(frame["subject"]))
    if subjects is not None and subjects < len(names):
        picked = {names[i] for i in np.linspace(0, len(names) - 1, subjects).round().astype(int).tolist()}
        frame = frame[frame["subject"].isin(picked)]
    return [
        BenchItem(
            r.subject,
            r.class_name,
            bool(r.live),
            int(r.prompt_index),
            r.prompt_kind,
            r.prompt,
            Path(root) / r.reference_image,
        )
        for r in frame.itertuples()
    ]


def image_seed(seed: int, item: BenchItem, index: int) -> int:
    """The seed of image ``index`` of ``item``: a hash of (seed, subject, prompt, index), 63 bits."""
    text = f"{seed}\0{item.subject}\0{item.prompt}\0{index}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") >> 1


def image_noise(policy: Policy, cond: Condition, item: BenchItem, count: int, seed: int) -> Tensor:
    """Initial noise ``[count, N, D]`` of an item's ``count`` images (each from its own generator)."""
    noises = [
        initial_noise(policy, cond, 1, torch.Generator().manual_seed(image_seed(seed, item, k)))
        for k in range(count)
    ]
    return torch.cat(noises)


@torch.no_grad()
def generate_images(
    policy: Policy,
    requests: Sequence[tuple[BenchItem, int]],
    settings: SamplerConfig,
    seed: int,
    batch_size: int = 128,
    progress: bool = False,
) -> list[Image.Image]:
    """One ODE sample per ``(item, image index)`` request, each from its own noise (:func:`image_seed`).

    An image depends on its item, index and seed, and (through the kernels a CPU picks for a batch
    size, at most one grey level) on the number of requests: callers that must reproduce an image
    exactly (a resumed evaluation) pass the same number of requests.
    """
    if not requests:
        raise ValueError("no images to generate")
    conds: dict[BenchItem, Condition] = {}
    for item, _ in requests:
        if item not in conds:
            conds[item] = encode_condition(policy, item.prompt, item.reference, settings.resolution)
    noise = torch.cat(
        [
            initial_noise(policy, conds[item], 1, torch.Generator().manual_seed(image_seed(seed, item, k)))
            for item, k in requests
        ]
    )  # (R, N, D)
    cond = (
        Condition.cat([conds[item] for item, _ in requests]) if len(requests) > 1 else conds[requests[0][0]]
    )
    latents = sample(
        policy, cond, settings, len(requests), noise=noise, batch_size=batch_size, progress=progress
    )
    return to_pil(decode_latents(policy, latents, settings.resolution, batch_size))


def generate_samples(
    policy: Policy,
    items: Sequence[BenchItem],
    settings: SamplerConfig,
    samples_per_item: int,
    seed: int,
    batch_size: int = 128,
    progress: bool = False,
) -> list[list[Image.Image]]:
    """``samples_per_item`` ODE samples of each item, as PIL images per item (module docstring)."""
    if not items:
        raise ValueError("no items to generate")
    requests = [(item, k) for item in items for k in range(samples_per_item)]
    images = generate_images(policy, requests, settings, seed, batch_size, progress)
    return [images[k * samples_per_item : (k + 1) * samples_per_item] for k in range(len(items))]
