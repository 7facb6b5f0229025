"""Pixels in and out: reference images to tensors, latents to uint8 / PIL images, PNG files.

References follow UNO's ``preprocess_ref`` (uno/flux/pipeline.py): resize the long side to the
reference size keeping the aspect ratio (Lanczos), centre-crop both sides down to a multiple of one
packed latent token (16 px for FLUX), convert to RGB. Any 8-bit PIL mode is converted (transparent
pixels composited on white); 16/32-bit modes and float arrays are rejected with an error saying how to
convert them. Deviation: images are rounded to uint8 (UNO truncates with ``.byte()``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from cgrpo_core.policy.latents import unpack_latents
from cgrpo_core.store import atomic_write

if TYPE_CHECKING:
    from cgrpo_core.policy.loading import Policy

__all__ = ["ImageLike", "decode_latents", "reference_tensor", "save_png", "to_pil", "to_rgb", "to_uint8"]

ImageLike = Image.Image | np.ndarray | str | Path
_HIGH_BIT_MODES = {"I", "F", "I;16", "I;16B", "I;16L", "I;16N"}


def to_rgb(image: ImageLike) -> Image.Image:
    """An RGB PIL image from a PIL image of any 8-bit mode, a uint8 array (H, W[, 1|3|4]) or a file path."""
    if isinstance(image, str | Path):
        with Image.open(image) as opened:
            image = opened.copy()
    if isinstance(image, np.ndarray):
        image = _array_to_pil(image)
    if not isinstance(image, Image.Image):
        raise TypeError(
            f"a reference must be a PIL image, a uint8 numpy array or a path, got {type(image).__name__}"
        )
    if image.width == 0 or image.height == 0:
        raise ValueError(f"reference image is empty ({image.width}x{image.height})")
    if image.mode in _HIGH_BIT_MODES:
        raise ValueError(
            f"reference image has {image.mode!r} pixels (16/32-bit); convert it to 8-bit RGB first, e.g. "
            "Image.fromarray((array / array.max() * 255).astype('uint8')).convert('RGB')"
        )
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def _array_to_pil(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8:
        raise ValueError(
            f"reference array has dtype {array.dtype}; pass uint8 pixels in [0, 255] "
            "(e.g. (x * 255).round().clip(0, 255).astype(np.uint8) for floats in [0, 1])"
        )
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4)):
        return Image.fromarray(np.ascontiguousarray(array))  # L, RGB or RGBA
    raise ValueError(f"reference array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {array.shape}")


def reference_tensor(image: ImageLike, long_side: int, multiple: int) -> Tensor:
    """UNO's reference preprocessing: ``[1, 3, H, W]`` float32 in [-1, 1], H and W multiples of ``multiple``.

    The long side becomes ``long_side`` (up- or down-scaled, aspect kept), then both sides are centre-
    cropped to multiples of ``multiple``. An image so elongated that its short side falls below one
    token is an error.
    """
    rgb = to_rgb(image)
    width, height = rgb.size
    scale = long_side / max(width, height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    crop_w, crop_h = new_w // multiple * multiple, new_h // multiple * multiple
    if crop_w == 0 or crop_h == 0:
        raise ValueError(
            f"reference {width}x{height} is too elongated: at long side {long_side} px its short side is "
            f"{min(new_w, new_h)} px, below one {multiple}-px token; crop it closer to a square first"
        )
    resized = rgb.resize((new_w, new_h), resample=Image.LANCZOS)
    left, top = (new_w - crop_w) // 2, (new_h - crop_h) // 2
    cropped = resized.crop((left, top, left + crop_w, top + crop_h))
    pixels = torch.from_numpy(np.asarray(cropped, dtype=np.uint8).copy())  # (H, W, 3)
    return (pixels.permute(2, 0, 1).float() / 127.5 - 1.0).unsqueeze(0)  # (1, 3, H, W)


@torch.no_grad()
def decode_latents(policy: Policy, latents: Tensor, resolution: int, batch_size: int | None = None) -> Tensor:
    """Packed latents ``[B, N, 4C]`` -> images ``[B, 3, H, W]`` float32 in [-1, 1] (FLUX VAE scaling)."""
    grid = resolution // policy.pixel_multiple  # target tokens per side
    vae = policy.vae
    outs = []
    step = batch_size or latents.shape[0]
    for chunk in latents.split(step):
        z = unpack_latents(chunk, grid, grid)  # (b, C, h, w)
        z = z / vae.config.scaling_factor + vae.config.shift_factor
        outs.append(vae.decode(z.to(device=vae.device, dtype=vae.dtype)).sample.float().clamp(-1.0, 1.0))
    return torch.cat(outs)


def to_uint8(images: Tensor) -> Tensor:
    """``[B, 3, H, W]`` in [-1, 1] -> ``[B, H, W, 3]`` uint8 (rounded)."""
    return ((images.float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu()


def to_pil(images: Tensor) -> list[Image.Image]:
    """uint8 ``[B, H, W, 3]`` (or float ``[B, 3, H, W]`` in [-1, 1]) -> RGB PIL images."""
    if images.dtype != torch.uint8:
        images = to_uint8(images)
    return [Image.fromarray(image.numpy()) for image in images]


def save_png(image: Image.Image | Tensor, path: str | Path) -> Path:
    """Write one image (PIL, or uint8 ``[H, W, 3]``) as PNG, atomically."""
    if isinstance(image, Tensor):
        image = Image.fromarray(image.cpu().numpy())
    with atomic_write(path, "wb") as handle:
        image.save(handle, format="PNG")
    return Path(path)
