"""Pictures of the toy zoo's generator: sample grids (reference | prompt | samples) and training curves.

A grid has one row per item: the reference image, the prompt as text, then the samples, each image scaled
to ``tile`` pixels with nearest-neighbour (the toy world's 64 px stay crisp). :func:`grid_image` only
composes; :func:`sample_grid` samples the policy first (seeded, the same samples as
:func:`cgrpo_core.zoo.policy_checks.generate_samples`).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: figures are only ever written to files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from cgrpo_core.config import SamplerConfig  # noqa: E402
from cgrpo_core.policy import Policy  # noqa: E402
from cgrpo_core.zoo.common import Curve  # noqa: E402
from cgrpo_core.zoo.policy_checks import CheckItem, generate_samples  # noqa: E402

__all__ = ["grid_image", "grid_items", "plot_training_curve", "sample_grid"]

TEXT_TILES = 2  # the prompt column is this many tiles wide


def grid_items(items: Sequence[CheckItem], rows: int = 8) -> list[CheckItem]:
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
    items: Sequence[CheckItem],
    settings: SamplerConfig,
    seed: int = 0,
    samples_per_item: int = 4,
    tile: int = 128,
) -> Image.Image:
    """A grid of ``samples_per_item`` policy samples for each item (rows: reference | prompt | samples)."""
    samples = generate_samples(policy, items, settings, samples_per_item, seed)
    references = [Image.open(it.reference).convert("RGB") for it in items]
    return grid_image(references, [it.prompt for it in items], samples, tile)


def plot_training_curve(curve: Curve, title: str, ylabel: str = "training loss") -> Figure:
    """Loss per step (thin) and its moving average (thick), log scale."""
    if not curve:
        raise ValueError(f"{title}: the training curve is empty")
    steps = np.array([s for s, _ in curve])
    loss = np.array([v for _, v in curve])
    window = max(1, len(loss) // 50)
    smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(steps, loss, lw=0.6, alpha=0.4, color="#1f77b4", label="per step")
    ax.plot(steps[window - 1 :], smooth, lw=2, color="#1f77b4", label=f"moving average ({window} steps)")
    ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
