"""Latents as tokens: FLUX packs 2x2 latent patches into one token with 3-axis rotary position ids.

Shared by conditioning (references become tokens), sampling (noise is drawn unpacked, then packed) and
decoding (tokens back to a latent image).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["grid_ids", "pack_latents", "unpack_latents"]


def pack_latents(latents: Tensor) -> Tensor:
    """``[B, C, H, W]`` -> ``[B, (H/2)(W/2), 4C]``: 2x2 patches as tokens, channels-major (FLUX/UNO order)."""
    b, c, h, w = latents.shape
    if h % 2 or w % 2:
        raise ValueError(f"latent height and width must be even to pack 2x2, got {h}x{w}")
    x = latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)  # (B, h/2, w/2, C, 2, 2)
    return x.reshape(b, (h // 2) * (w // 2), c * 4)


def unpack_latents(tokens: Tensor, grid_h: int, grid_w: int) -> Tensor:
    """Inverse of :func:`pack_latents`: ``[B, grid_h * grid_w, 4C]`` -> ``[B, C, 2 grid_h, 2 grid_w]``."""
    b, n, d = tokens.shape
    if n != grid_h * grid_w or d % 4:
        raise ValueError(f"cannot unpack {tuple(tokens.shape)} into a {grid_h}x{grid_w} grid of 2x2 patches")
    x = tokens.view(b, grid_h, grid_w, d // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)  # (B, C, gh, 2, gw, 2)
    return x.reshape(b, d // 4, 2 * grid_h, 2 * grid_w)


def grid_ids(grid_h: int, grid_w: int, row_offset: int = 0, col_offset: int = 0) -> Tensor:
    """Rotary ids ``[grid_h * grid_w, 3]`` of a token grid: (0, row + row_offset, col + col_offset)."""
    ids = torch.zeros(grid_h, grid_w, 3)
    ids[..., 1] = torch.arange(grid_h)[:, None] + row_offset
    ids[..., 2] = torch.arange(grid_w)[None, :] + col_offset
    return ids.reshape(grid_h * grid_w, 3)
