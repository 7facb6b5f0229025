"""Image preparation shared by the reward models: loading, the DreamBench resize/crop, subject masking.

Two ways to turn a PIL image into model input (``EmbeddingRewardConfig.image_prep``):

- ``processor``: the checkpoint's own image processor, exactly as saved with it (DINOv2: shorter side
  256 bicubic + centre-crop 224; CLIP: shorter side 224 bicubic + centre-crop 224; DINO v1: 224 x 224).
- ``resize_crop``: the DreamBench protocol of DreamBooth-lineage evaluation scripts, written out here so
  that it is pinned: shorter side to ``round(S / crop_fraction)`` (S = the model's input side, 224 ->
  256) with torchvision's size rule (long side truncated), centre-crop S x S with torchvision's rounding,
  scale to [0, 1], normalise with the checkpoint's own mean/std.

Masking (DINO-Seg, section 4.1 "remove the background variations"): every pixel outside the subject
mask is set to the model's mean colour (which normalises to exactly 0, so the background carries no
signal), then, with ``crop_to_mask``, the image is cut to a square around the mask's bounding box
(plus a margin; parts beyond the image are mean-coloured too), so the subject's position and size in the
frame do not matter either. An empty mask (no subject found) gives a uniform mean-coloured image: the
reward then measures a missing subject as dissimilar, it never fails.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

__all__ = [
    "apply_mask",
    "image_key",
    "load_image",
    "load_mask",
    "mask_key",
    "mean_colour",
    "native_size",
    "prepare_pixels",
    "resize_center_crop",
    "to_tensor",
]

RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def load_image(image: Image.Image | str | Path) -> Image.Image:
    """An RGB PIL image from an image or a path."""
    if isinstance(image, str | Path):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"image file {path} does not exist")
        with Image.open(path) as handle:
            return handle.convert("RGB")
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image or a path, got {type(image).__name__}")
    return image if image.mode == "RGB" else image.convert("RGB")


def load_mask(mask: np.ndarray | Image.Image | str | Path) -> np.ndarray:
    """A boolean [H, W] subject mask from an array (bool, 0/1 or 0-255) or a grey image (white = subject)."""
    if isinstance(mask, str | Path | Image.Image):
        image = Image.open(mask) if not isinstance(mask, Image.Image) else mask
        return np.asarray(image.convert("L")) > 127
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"a mask must be 2-D [H, W], got shape {array.shape}")
    if array.dtype == bool:
        return array
    return array > (127 if array.max(initial=0) > 1 else 0.5)


def image_key(image: Image.Image) -> str:
    """A content hash of an image (mode, size, pixels): deduplicates references within a batch."""
    digest = hashlib.sha1(f"{image.mode}{image.size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def mask_key(mask: np.ndarray) -> str:
    """A content hash of a boolean mask (shape and bits)."""
    return hashlib.sha1(f"{mask.shape}".encode() + np.packbits(mask).tobytes()).hexdigest()


def mean_colour(mean: tuple[float, ...] | list[float]) -> tuple[int, int, int]:
    """The 0-255 RGB colour that a processor's normalisation maps to (about) 0."""
    return tuple(int(round(255 * m)) for m in mean)  # type: ignore[return-value]


def native_size(processor) -> int:
    """The square input side an image processor produces (its crop size, else its resize size)."""
    if getattr(processor, "do_center_crop", False) and getattr(processor, "crop_size", None):
        return int(processor.crop_size["height"])
    size = processor.size
    side = size.get("height") or size.get("shortest_edge")
    if not side:
        raise ValueError(f"cannot tell the input size of {type(processor).__name__} (size={size})")
    return int(side)


def resize_center_crop(
    image: Image.Image, crop: int, crop_fraction: float, interpolation: str
) -> Image.Image:
    """Shorter side to round(crop / crop_fraction), then a centre crop of crop x crop (torchvision rules)."""
    short = int(round(crop / crop_fraction))
    w, h = image.size
    new_w, new_h = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    image = image.resize((new_w, new_h), RESAMPLE[interpolation])
    top, left = int(round((new_h - crop) / 2.0)), int(round((new_w - crop) / 2.0))
    return image.crop((left, top, left + crop, top + crop))


def to_tensor(images: list[Image.Image], mean, std) -> torch.Tensor:
    """[N, 3, H, W] float32: pixels / 255, minus mean, over std (per channel)."""
    array = np.stack([np.asarray(im, dtype=np.float32) / 255.0 for im in images])  # (N, H, W, 3)
    array = (array - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def prepare_pixels(images: list[Image.Image], processor, mode: str, crop_fraction: float, interpolation: str):
    """Model input [N, 3, S, S] by ``mode`` (see the module docstring)."""
    if mode == "processor":
        return processor(images=images, return_tensors="pt")["pixel_values"]
    if mode == "resize_crop":
        side = native_size(processor)
        crops = [resize_center_crop(im, side, crop_fraction, interpolation) for im in images]
        return to_tensor(crops, processor.image_mean, processor.image_std)
    raise ValueError(f"unknown image_prep {mode!r}; choose 'processor' or 'resize_crop'")


def apply_mask(
    image: Image.Image, mask: np.ndarray, fill: tuple[int, int, int], crop_to_mask: bool, margin: float
) -> Image.Image:
    """The subject alone: background set to ``fill``; optionally a square crop around the mask."""
    pixels = np.asarray(image)
    if mask.shape != pixels.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image size {pixels.shape[:2]}")
    canvas = np.empty_like(pixels)
    canvas[:] = np.asarray(fill, dtype=pixels.dtype)
    if not mask.any():
        return Image.fromarray(canvas)
    out = np.where(mask[..., None], pixels, canvas)
    if not crop_to_mask:
        return Image.fromarray(out)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    side = int(np.ceil(max(y1 - y0, x1 - x0) * (1 + 2 * margin)))
    top, left = (y0 + y1 - side) // 2, (x0 + x1 - side) // 2
    square = np.empty((side, side, 3), dtype=pixels.dtype)
    square[:] = np.asarray(fill, dtype=pixels.dtype)
    sy0, sx0 = max(top, 0), max(left, 0)
    sy1, sx1 = min(top + side, pixels.shape[0]), min(left + side, pixels.shape[1])
    square[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = out[sy0:sy1, sx0:sx1]
    return Image.fromarray(square)
