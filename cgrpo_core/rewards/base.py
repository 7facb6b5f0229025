"""The reward interface: a batch of generated images in, one float per image out.

Every reward and metric (DINO, DINO-Seg, CLIP-I, CLIP-T, HPSv3, aesthetic, VLM judges) is a callable
``reward(batch: RewardBatch) -> Tensor [N]`` with a ``name`` and the inputs it ``needs`` beside the
images (``references``, ``prompts``, ``subjects``). :class:`RewardBatch` is the one object that flows in:
N generated images (PIL RGB, or paths), per image one or more reference images (DreamBench averages
image similarities over every reference of the subject), the prompt, the subject's class name (for
open-vocabulary segmentation) and optional reference masks (the dataset's own subject masks).

Also here: the checkpoint resolution every loader shares (a missing checkpoint is an error naming what
to download and where to put it) and :func:`batched`, which runs a model over chunks under
``torch.no_grad`` with a progress bar for long batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from cgrpo_core.rewards.preprocessing import load_image, load_mask

__all__ = [
    "MissingCheckpointError",
    "Reward",
    "RewardBatch",
    "batched",
    "checkpoint_dir",
    "checkpoint_file",
    "loading",
]

INPUTS = ("references", "prompts", "subjects")
PROGRESS_MIN_ITEMS = 64  # below this many items a progress bar is noise
T = TypeVar("T")


class MissingCheckpointError(FileNotFoundError):
    """A reward model's weights are not where the config says; the message says what to download."""


@dataclass(frozen=True)
class RewardBatch:
    """N generated images plus, as a reward needs them, references, prompts, subjects and masks.

    ``references[i]`` is a list of reference images of image i's subject (a single image is accepted
    and wrapped); ``reference_masks[i][k]`` is a boolean [H, W] subject mask of ``references[i][k]`` or
    None (then the segmenter finds it). Paths are loaded as RGB images (masks: white = subject).
    """

    images: Sequence[Image.Image]
    references: Sequence[Sequence[Image.Image]] | None = None
    prompts: Sequence[str] | None = None
    subjects: Sequence[str] | None = None
    reference_masks: Sequence[Sequence[np.ndarray | None]] | None = None

    def __post_init__(self) -> None:
        n = len(self.images)
        if n == 0:
            raise ValueError("a reward batch needs at least one image")
        object.__setattr__(self, "images", [load_image(im) for im in self.images])
        for name in ("references", "prompts", "subjects", "reference_masks"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries for {n} images: give one per image")
        if self.references is not None:
            refs = [[load_image(r) for r in _as_list(rs)] for rs in self.references]
            if any(len(r) == 0 for r in refs):
                raise ValueError("every image needs at least one reference image")
            object.__setattr__(self, "references", refs)
        if self.reference_masks is not None:
            if self.references is None:
                raise ValueError("reference_masks given without references")
            masks = [
                [None if m is None else load_mask(m) for m in _as_list(ms)] for ms in self.reference_masks
            ]
            for i, (ms, rs) in enumerate(zip(masks, self.references, strict=True)):
                if len(ms) != len(rs):
                    raise ValueError(f"image {i}: {len(ms)} reference masks for {len(rs)} references")
            object.__setattr__(self, "reference_masks", masks)
        for name in ("prompts", "subjects"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, [str(v) for v in value])

    def __len__(self) -> int:
        return len(self.images)

    def require(self, reward: str, needs: frozenset[str]) -> None:
        """Raise a clear error if an input that ``reward`` needs is missing."""
        missing = [name for name in INPUTS if name in needs and getattr(self, name) is None]
        if missing:
            raise ValueError(f"reward {reward!r} needs {', '.join(missing)} for every image; got none")


def _as_list(value) -> list:
    if isinstance(value, Image.Image | str | Path | np.ndarray) or value is None:
        return [value]
    return list(value)


class Reward(Protocol):
    """One reward or metric: ``reward(batch) -> Tensor [N]`` (float32, on the CPU)."""

    name: str
    needs: frozenset[str]

    def __call__(self, batch: RewardBatch) -> torch.Tensor: ...


def batched(
    fn: Callable[[list[T]], torch.Tensor], items: Sequence[T], batch_size: int, desc: str
) -> torch.Tensor:
    """``fn`` over chunks of ``items`` under ``torch.no_grad``, concatenated on the CPU ([N, ...]).

    Shows a progress bar when there are at least ``PROGRESS_MIN_ITEMS`` items and more than one chunk.
    """
    chunks = [list(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]
    show = len(items) >= PROGRESS_MIN_ITEMS and len(chunks) > 1
    outs = []
    with torch.no_grad():
        for chunk in tqdm(chunks, desc=desc, disable=not show, leave=False):
            outs.append(fn(chunk).detach().float().cpu())
    return torch.cat(outs)


TOY_NAMESPACES = ("toy", "toy-zoo")  # ids of models trained in-project: nothing to download


def _download_hint(what: str, repo: str, folder: str | Path | None, filename: str | None = None) -> str:
    if repo.split("/")[0] in TOY_NAMESPACES:
        return (
            f"{what} is a toy-zoo model, trained in-project, not downloaded: build the zoo with "
            "`python -m flows.zoo` (or set the config's folder to where it already is)"
        )
    target = f" --local-dir {folder}" if folder else ""
    file = f" {filename}" if filename else ""
    return (
        f"{what}: download it with `hf download {repo}{file}{target}` "
        f"(or set the config's folder to where it already is)"
    )


def checkpoint_dir(what: str, model_id: str, local_dir: str | None, required: str = "config.json") -> str:
    """The folder (or hub id) to pass to ``from_pretrained``; an error naming the download if absent.

    With ``local_dir`` the folder must exist and hold ``required``; without it ``model_id`` is returned
    and the caller's ``from_pretrained`` looks in the hub cache (wrap it in :func:`loading`).
    """
    if local_dir is None:
        return model_id
    folder = Path(local_dir)
    if not (folder / required).is_file():
        raise MissingCheckpointError(
            f"no {what} checkpoint in {folder} ({required} is missing). "
            + _download_hint(what, model_id, folder)
        )
    return str(folder)


def checkpoint_file(
    what: str, folder: str | None, filename: str, repo: str | None = None, url: str | None = None
) -> Path:
    """The path of a single weights file: ``folder/filename``, or without a folder the hub cache copy of
    ``repo``'s file (downloaded when online); an error naming where to get it if absent."""
    if folder is None and repo is not None:
        from huggingface_hub import hf_hub_download

        try:
            return Path(hf_hub_download(repo, filename))
        except Exception as err:  # offline and not cached, unknown repo, no network
            raise MissingCheckpointError(
                f"{what}: {filename} of {repo} is not in the hub cache ({type(err).__name__}). "
                + _download_hint(what, repo, None, filename)
            ) from err
    hint = f"download {url} into it" if url else _download_hint(what, repo or "?", folder, filename)
    if folder is None:
        raise MissingCheckpointError(f"{what}: no folder is configured for {filename}; set one and {hint}")
    path = Path(folder) / filename
    if not path.is_file():
        raise MissingCheckpointError(f"{what}: {path} is missing; {hint}")
    return path


def loading(what: str, model_id: str, load: Callable[[], T]) -> T:
    """Run a ``from_pretrained`` call; turn "not found / offline" into :class:`MissingCheckpointError`."""
    try:
        return load()
    except OSError as err:
        if isinstance(err, MissingCheckpointError):
            raise
        raise MissingCheckpointError(
            f"could not load {what} from {model_id!r} ({err}). " + _download_hint(what, model_id, None)
        ) from err
