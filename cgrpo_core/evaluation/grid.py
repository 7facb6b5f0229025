"""Sample grids: one row per item, the reference | the prompt | the model's samples.

A grid has one row per item: the reference image, the prompt as text, then the samples, each image scaled
to ``tile`` pixels with nearest-neighbour (the toy world's 64 px stay crisp). :func:`grid_image` only
composes; :func:`sample_grid` samples the policy first (seeded, the same samples as
:func:`cgrpo_core.evaluation.generation.generate_samples`).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:
    from cgrpo_core.evaluation.generation import BenchItem
    from cgrpo_core.policy import Policy, SamplerConfig

__all__ = ["grid_image", "grid_items", "sample_grid"]

TEXT_TILES = 2  # the prompt column is this many tiles wide


def grid_items(items: Sequence[BenchItem], rows: int = 8) -> list[BenchItem]:
    """``rows`` items of distinct subjects spread over the list, cycling through the prompt kinds."""
    subjects = list(dict.fromkeys(it.subject for it in items))
    chosen = [subjects[round(k)] for k in np.linspace(0, len(subjects) - 1, min(rows, len(subjects)))]
    kinds = sorted({it.kind for it in items})
    out = []
    for row, subject in enumerate(chosen):
        own = [it for it in items if it.subject == subject]
        wanted = [it for it in own if it.kind == kinds[row % len(kinds)]] or own
        out.append(wanted[row % len(wanted)])
    return out


def _text_tile(text: str, width: int, height: int) -> Image.Image:
    tile = Image.new("RGB", (width, height), "white")
    size = max(8, height // 9)
    font = ImageFont.load_default(size=size)
    lines = textwrap.wrap(text, width=max(8, int(width / (0.55 * size))))
    ImageDraw.Draw(tile).multiline_text((4, 4), "\n".join(lines), fill="black", font=font, spacing=2)
    return tile


def grid_image(
    references: Sequence[Image.Image],
    prompts: Sequence[str],
    samples: Sequence[Sequence[Image.Image]],
    tile: int = 128,
) -> Image.Image:
    """Rows of reference | prompt | samples: ``(tile * (1 + 2 + S), tile * rows)`` pixels, S samples a row."""
    if not len(references) == len(prompts) == len(samples) > 0:
        raise ValueError("give one reference, prompt and sample list per row (at least one row)")
    columns = 1 + TEXT_TILES + max(len(s) for s in samples)
    grid = Image.new("RGB", (tile * columns, tile * len(references)), "white")
    for row, (reference, prompt, images) in enumerate(zip(references, prompts, samples, strict=True)):
        y = row * tile
        grid.paste(reference.convert("RGB").resize((tile, tile), Image.NEAREST), (0, y))
        grid.paste(_text_tile(prompt, TEXT_TILES * tile, tile), (tile, y))
        for k, image in enumerate(images):
            grid.paste(
                image.convert("RGB").resize((tile, tile), Image.NEAREST), ((1 + TEXT_TILES + k) * tile, y)
            )
    return grid


def sample_grid(
    policy: Policy,
    items: Sequence[BenchItem],
    settings: SamplerConfig,
    seed: int,
    samples_per_item: int,
    tile: int = 128,
) -> Image.Image:
    """A grid of ``samples_per_item`` policy samples for each item (rows: reference | prompt | samples)."""
    # sampling (diffusers) only here: composing a grid of images that exist (grid_image) needs none of it
    from cgrpo_core.evaluation.generation import generate_samples

    samples = generate_samples(policy, items, settings, samples_per_item, seed)
    references = [Image.open(it.reference).convert("RGB") for it in items]
    return grid_image(references, [it.prompt for it in items], samples, tile)
