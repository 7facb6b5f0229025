"""Subject conditioning as in UNO: prompt embeddings, packed reference tokens and their position ids.

UNO (Wu et al. 2025; released ``uno/flux/sampling.py::prepare_multi_ip``) puts the reference image in
context: each reference is VAE-encoded, packed 2x2 into tokens exactly like the target latents and
appended to the image sequence; the transformer attends over [text, target, references] and only the
target tokens' output is used. Positions use FLUX's 3-axis rotary ids (0, row, column). UNO's
"UnoPE" shifts each reference's ids past the target grid so the model can tell them apart:

- ``diagonal`` (UNO ``pe='d'``, its default and ours): row and column ids both start after the target's
  last row/column, then after the previous reference's (cumulative offsets for several references);
- ``height`` / ``width`` (``'h'`` / ``'w'``): only the row / column ids are shifted;
- ``none`` (``'o'``): references reuse the target's ids.

Text follows FLUX.1-dev: CLIP's pooled output (padded to its max length) and T5's last hidden state
(padded to its max length, no attention mask), text ids all zero. Deviation from UNO: the reference
latent is the posterior mean (UNO samples from the VAE posterior with the global RNG), so conditioning
is deterministic.

Everything a group of rollouts shares is computed once into a :class:`Condition` and reused for every
step, every sample and every log-prob recomputation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from cgrpo_core.policy.images import ImageLike, reference_tensor
from cgrpo_core.policy.latents import grid_ids, pack_latents

if TYPE_CHECKING:
    from cgrpo_core.policy.loading import Policy

__all__ = [
    "UNOPE_AXES",
    "Condition",
    "encode_condition",
    "encode_prompt",
    "encode_references",
    "reference_ids",
]

# UnoPE mode -> (shift rows, shift columns); the config Literal lists the same names.
UNOPE_AXES: dict[str, tuple[bool, bool]] = {
    "diagonal": (True, True),
    "height": (True, False),
    "width": (False, True),
    "none": (False, False),
}


def reference_ids(target_grid: tuple[int, int], ref_grids: Sequence[tuple[int, int]], mode: str) -> Tensor:
    """UnoPE ids ``[sum of ref tokens, 3]`` for references of token grids ``ref_grids`` (module docstring)."""
    if mode not in UNOPE_AXES:
        raise ValueError(f"unknown UnoPE mode {mode!r}; choose from {sorted(UNOPE_AXES)}")
    shift_rows, shift_cols = UNOPE_AXES[mode]
    next_row, next_col = target_grid
    parts = [torch.zeros(0, 3)]
    for ref_h, ref_w in ref_grids:
        parts.append(grid_ids(ref_h, ref_w, next_row if shift_rows else 0, next_col if shift_cols else 0))
        next_row, next_col = next_row + ref_h, next_col + ref_w  # UNO: offsets accumulate per reference
    return torch.cat(parts)


@torch.no_grad()
def encode_prompt(policy: Policy, prompt: str) -> tuple[Tensor, Tensor]:
    """FLUX text conditioning: ``(T5 states [1, L, D_t5], CLIP pooled [1, D_clip])`` in the policy dtype.

    An empty (or blank) prompt is an error unless ``policy.config.allow_empty_prompt``.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
    if not prompt.strip() and not policy.config.allow_empty_prompt:
        raise ValueError(
            "empty prompt; pass a text prompt, or set policy.allow_empty_prompt for unconditional use"
        )
    device = policy.text_encoder.device
    clip_ids = policy.tokenizer(
        [prompt],
        padding="max_length",
        max_length=policy.clip_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    pooled = policy.text_encoder(clip_ids.to(device), output_hidden_states=False).pooler_output
    t5_ids = policy.tokenizer_2(
        [prompt], padding="max_length", max_length=policy.t5_max_length, truncation=True, return_tensors="pt"
    ).input_ids
    states = policy.text_encoder_2(t5_ids.to(policy.text_encoder_2.device), output_hidden_states=False)[0]
    return states.to(device=policy.device, dtype=policy.dtype), pooled.to(
        device=policy.device, dtype=policy.dtype
    )


@torch.no_grad()
def encode_references(
    policy: Policy, references: Sequence[ImageLike], long_side: int
) -> tuple[Tensor, list[tuple[int, int]]]:
    """VAE-encode and pack references: ``(tokens [1, N_ref, 4C] in the policy dtype, token grids (h, w))``."""
    vae = policy.vae
    tokens, grids = (
        [torch.zeros(1, 0, 4 * policy.latent_channels, device=policy.device, dtype=policy.dtype)],
        [],
    )
    for image in references:
        pixels = reference_tensor(image, long_side, policy.pixel_multiple)  # (1, 3, H, W)
        latent = vae.encode(pixels.to(device=vae.device, dtype=vae.dtype)).latent_dist.mode()
        latent = (latent - vae.config.shift_factor) * vae.config.scaling_factor  # (1, C, H/f, W/f)
        tokens.append(pack_latents(latent).to(device=policy.device, dtype=policy.dtype))
        grids.append((latent.shape[2] // 2, latent.shape[3] // 2))
    return torch.cat(tokens, dim=1), grids


@dataclass(frozen=True)
class Condition:
    """What the transformer sees besides the noisy latents; computed once per (prompt, references).

    Notation: B conditions (1 for one group), L text tokens, N target tokens, R reference tokens.
    """

    prompt_embeds: Tensor  # (B, L, D_t5)
    pooled_embeds: Tensor  # (B, D_clip)
    ref_tokens: Tensor  # (B, R, 4C)
    txt_ids: Tensor  # (L, 3)
    img_ids: Tensor  # (N, 3)
    ref_ids: Tensor  # (R, 3)
    resolution: int  # target side in pixels
    grid: int  # target tokens per side: N = grid**2

    @property
    def batch(self) -> int:
        return self.prompt_embeds.shape[0]

    @property
    def num_tokens(self) -> int:
        return self.img_ids.shape[0]

    def expand(self, n: int) -> Condition:
        """The condition for a batch of ``n`` latents (a view when ``batch == 1``)."""
        if self.batch == n:
            return self
        if self.batch != 1:
            raise ValueError(f"a condition of batch {self.batch} cannot serve a batch of {n} latents")
        return replace(
            self,
            prompt_embeds=self.prompt_embeds.expand(n, -1, -1),
            pooled_embeds=self.pooled_embeds.expand(n, -1),
            ref_tokens=self.ref_tokens.expand(n, -1, -1),
        )

    def select(self, index: Tensor | slice) -> Condition:
        """Rows ``index`` of a batched condition (a batch-1 condition is returned as is)."""
        if self.batch == 1:
            return self
        return replace(
            self,
            prompt_embeds=self.prompt_embeds[index],
            pooled_embeds=self.pooled_embeds[index],
            ref_tokens=self.ref_tokens[index],
        )

    @staticmethod
    def cat(conditions: Sequence[Condition]) -> Condition:
        """Batch conditions of equal shapes (same resolution, text length, reference sizes and ids)."""
        first = conditions[0]
        for other in conditions[1:]:
            if (other.resolution, other.ref_tokens.shape[1:]) != (
                first.resolution,
                first.ref_tokens.shape[1:],
            ) or (
                not torch.equal(other.ref_ids, first.ref_ids)
                or other.prompt_embeds.shape[1:] != first.prompt_embeds.shape[1:]
            ):
                raise ValueError("conditions to batch must share resolution, text length and reference grids")
        return replace(
            first,
            prompt_embeds=torch.cat([c.prompt_embeds for c in conditions]),
            pooled_embeds=torch.cat([c.pooled_embeds for c in conditions]),
            ref_tokens=torch.cat([c.ref_tokens for c in conditions]),
        )


def encode_condition(
    policy: Policy, prompt: str, references: ImageLike | Sequence[ImageLike], resolution: int
) -> Condition:
    """Encode ``prompt`` and ``references`` (one image or a list; may be empty) for ``resolution``-px targets.

    References are resized to ``policy.config.reference_size`` (default: ``resolution``) on the long side.
    """
    if resolution % policy.pixel_multiple:
        raise ValueError(
            f"resolution {resolution} must be a multiple of {policy.pixel_multiple} px (one packed token)"
        )
    if not isinstance(references, Sequence) or isinstance(references, str):
        references = [references]
    prompt_embeds, pooled = encode_prompt(policy, prompt)
    ref_tokens, ref_grids = encode_references(policy, references, policy.config.reference_size or resolution)
    grid = resolution // policy.pixel_multiple
    device = policy.device
    return Condition(
        prompt_embeds=prompt_embeds,
        pooled_embeds=pooled,
        ref_tokens=ref_tokens,
        txt_ids=torch.zeros(prompt_embeds.shape[1], 3, device=device),
        img_ids=grid_ids(grid, grid).to(device),
        ref_ids=reference_ids((grid, grid), ref_grids, policy.config.unope).to(device),
        resolution=resolution,
        grid=grid,
    )
