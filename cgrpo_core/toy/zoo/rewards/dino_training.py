"""Toy DINO backbones: a ``Dinov2Model`` (DINO-Seg, SynCD identity scorer) and a DINO v1 ``ViTModel`` (DINO).

Objective: a multi-view InfoNCE (SimCLR's NT-Xent with SynCD's views as positives, as in supervised
contrastive learning): each step draws ``sets_per_batch`` toy SynCD sets and two different views of each,
augments them (random zoom, shift and horizontal flip) and pulls the two embeddings of a set together
against every other view of the batch. The real DINO models are self-distilled on web images (one image,
many crops); the toy world gives the DINOv2 of DINO-Seg what that model learns from scale for free: several
views of one subject in different scenes, poses and lights. The toy DINO v1 (the DreamBench DINO metric)
also keeps the real model's own objective for half of its pairs (``self_share``: two augmentations of one
image), so it embeds the scene with the subject, background included, as the paper's motivation for
DINO-Seg says DINO does, while still telling subjects apart.

What each model sees is exactly what its reward feeds it (cgrpo_core/rewards/preprocessing.py):

- ``Dinov2Model``: the subject masked (background set to the processor's mean colour) and cut to a square
  around the mask (DINO-Seg), and the plain square subject crop (SynCD's ``crop_by_mask``, the identity
  scorer's input); a pair may mix the two, so both inputs embed a subject alike;
- ``ViTModel`` (DINO v1): whole images, as the DreamBench DINO metric encodes them.

The embedding is the one the reward reads: ``pooler_output`` (DINOv2) or ``last_hidden_state[:, 0]``
(DINO v1), both the final-layer-normed CLS token. Each model is saved with ``save_pretrained`` next to its
image processor (DINOv2's ``BitImageProcessor``: shorter side S*256/224 bicubic, centre-crop S; DINO v1's
``ViTImageProcessor``: S x S bilinear), the layouts of facebook/dinov2-* and facebook/dino-vits16.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from cgrpo_core.data.scoring import subject_crop
from cgrpo_core.rewards.embeddings import BACKBONES
from cgrpo_core.rewards.preprocessing import apply_mask, mean_colour, prepare_pixels
from cgrpo_core.rewards.segmentation import Segmenter
from cgrpo_core.toy.tiny.rewards import dino_model, dino_v1_processor, dinov2_processor
from cgrpo_core.toy.world.backgrounds import PAINTERS, paint_background
from cgrpo_core.toy.world.raster import Canvas
from cgrpo_core.toy.zoo.rewards.config import DinoTrainConfig
from cgrpo_core.toy.zoo.rewards.data import ViewData
from cgrpo_core.training.optim import Curve, adamw, optimizer_step, warmup_cosine

__all__ = [
    "DINO_INPUTS",
    "augment",
    "build_dino",
    "info_nce",
    "train_contrastive",
    "train_dino_v1",
    "train_dinov2",
    "view_pixels",
]

BACKGROUND_POOL = 96  # backgrounds painted once for the background twins
MASK_MARGIN = 0.1  # = EmbeddingRewardConfig.mask_margin (DINO-Seg)
CROP_THRESHOLD = 0.1  # = ScoreConfig.mask_threshold (SynCD's crop_by_mask)


def build_dino(cfg: DinoTrainConfig, family: str) -> tuple[torch.nn.Module, object]:
    """A randomly initialised ``Dinov2Model`` (family "dinov2") or DINO v1 ``ViTModel`` ("dino_v1") of
    ``cfg``'s sizes and its image processor."""
    model = dino_model(family, cfg.image_size, cfg.patch_size, cfg.hidden, cfg.layers, cfg.heads, cfg.seed)
    processor = dinov2_processor(cfg.image_size) if family == "dinov2" else dino_v1_processor(cfg.image_size)
    return model, processor


def _masked(data: ViewData, i: int, fill: tuple[int, int, int]) -> Image.Image:
    return apply_mask(data.pil(i), data.masks[i], fill, True, MASK_MARGIN)


def _segmented(data: ViewData, i: int, fill: tuple[int, int, int]) -> Image.Image:
    if data.predicted_masks is None:
        raise ValueError("the 'segmented' input needs the segmenter's masks (ViewData.predicted_masks)")
    return apply_mask(data.pil(i), data.predicted_masks[i], fill, True, MASK_MARGIN)


def _crop(data: ViewData, i: int, fill: tuple[int, int, int]) -> Image.Image:
    return subject_crop(data.pil(i), data.pil_mask(i), CROP_THRESHOLD)[0]


def _full(data: ViewData, i: int, fill: tuple[int, int, int]) -> Image.Image:
    return data.pil(i)


# input kind -> the image a reward feeds the backbone for view i
DINO_INPUTS: dict[str, Callable[[ViewData, int, tuple[int, int, int]], Image.Image]] = {
    "masked": _masked,
    "segmented": _segmented,
    "crop": _crop,
    "full": _full,
}


def view_pixels(data: ViewData, processor, kind: str) -> torch.Tensor:
    """Model inputs [N, 3, S, S] of every view as ``kind`` (masked / crop / full), through the processor."""
    if kind not in DINO_INPUTS:
        raise ValueError(f"unknown input kind {kind!r}; choose one of {sorted(DINO_INPUTS)}")
    fill = mean_colour(processor.image_mean)
    images = [DINO_INPUTS[kind](data, i, fill) for i in range(len(data))]
    return prepare_pixels(images, processor, "processor", 1.0, "bilinear")


def augment(
    pixels: torch.Tensor, gen: torch.Generator, min_scale: float, max_shift: float, flip: bool = True
) -> torch.Tensor:
    """Random zoom in [min_scale, 1], shift up to ``max_shift`` and (with ``flip``) horizontal flip of
    [B, 3, S, S] normalised images; uncovered borders are 0, the processor's mean colour."""
    b = pixels.shape[0]
    scale = min_scale + (1 - min_scale) * torch.rand(b, generator=gen)  # (B,) share of the side kept
    shift = (torch.rand(b, 2, generator=gen) * 2 - 1) * max_shift * 2  # (B, 2) in [-1, 1] grid units
    mirror = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0) if flip else torch.ones(b)  # (B,)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = scale * mirror
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)  # (B, S, S, 2)
    return F.grid_sample(pixels, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def info_nce(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float, cap: float | torch.Tensor = 1.0
) -> torch.Tensor:
    """NT-Xent of P positive pairs: z1[i] and z2[i] [P, D] against the other 2P - 2 embeddings, with each
    positive cosine capped at ``cap`` (a float or one per pair [P]; no pull beyond it; 1 = plain NT-Xent)."""
    z = F.normalize(torch.cat([z1, z2]), dim=-1)  # (2P, D)
    cos = z @ z.T  # (2P, 2P)
    p = len(z1)
    target = torch.cat([torch.arange(p, 2 * p), torch.arange(p)])  # (2P,): the partner view
    positive = F.one_hot(target, 2 * p).bool()  # (2P, 2P)
    caps = torch.as_tensor(cap, dtype=cos.dtype).expand(p).repeat(2)[:, None]  # (2P, 1)
    cos = torch.where(positive, torch.minimum(cos, caps), cos)
    logits = (cos / temperature).masked_fill(torch.eye(2 * p, dtype=torch.bool), float("-inf"))
    return F.cross_entropy(logits, target)


def _draw(
    groups: list[np.ndarray],
    kinds: int,
    count: int,
    gen: torch.Generator,
    swap_share: float = 0.0,
    self_share: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs [count, 2, 2] (view index, input kind) from ``count`` different groups and which of them are
    twins [count] (bool, pulled to cosine 1). A pair is two different views of the group as random kinds
    below ``kinds``; or (with probability ``self_share``) one view twice, a twin that the caller augments
    apart; or (with probability ``swap_share``) one view as two different kinds among all ``kinds + 2``
    (its dataset and segmenter masks, its two background twins): the same subject in the same pose."""
    chosen = torch.randperm(len(groups), generator=gen)[:count]
    rows, twins = [], []
    for g in chosen.tolist():
        views = groups[g]
        a, b = torch.randperm(len(views), generator=gen)[:2].tolist()
        if self_share and bool(torch.rand(1, generator=gen) < self_share):
            k = torch.randint(kinds, (2,), generator=gen).tolist()
            rows.append([[int(views[a]), k[0]], [int(views[a]), k[1]]])
            twins.append(True)
            continue
        twin = bool(torch.rand(1, generator=gen) < swap_share)
        k = (
            torch.randperm(kinds + 2, generator=gen)[:2]
            if twin
            else torch.randint(kinds, (2,), generator=gen)
        )
        rows.append([[int(views[a]), int(k[0])], [int(views[a] if twin else views[b]), int(k[1])]])
        twins.append(twin)
    return torch.tensor(rows), torch.tensor(twins)


def train_contrastive(
    model: torch.nn.Module,
    family: str,
    inputs: list[torch.Tensor],
    groups: list[np.ndarray],
    cfg: DinoTrainConfig,
    desc: str,
    progress: bool = True,
) -> Curve:
    """Multi-view InfoNCE training of ``model`` (see the module docstring); ``inputs``: one [N, 3, S, S]
    tensor per input kind of ``cfg.inputs``, then (with ``cfg.swap_share`` > 0) the two background twins;
    ``groups``: the view indices of each subject. Returns (step, loss) per step."""
    groups = [g for g in groups if len(g) >= 2]
    if len(groups) < 2:
        raise ValueError(f"{desc}: contrastive training needs at least 2 subjects with 2+ views each")
    features = BACKBONES[family][2]
    gen = torch.Generator().manual_seed(cfg.seed)
    optimizer, schedule = adamw(
        model.parameters(), cfg.learning_rate, cfg.weight_decay, warmup_cosine(cfg.steps, cfg.warmup_steps)
    )
    kinds = len(cfg.inputs)
    if len(inputs) != kinds + (2 if cfg.swap_share else 0):
        raise ValueError(
            f"{desc}: {len(inputs)} inputs for kinds {cfg.inputs} and swap_share {cfg.swap_share}"
        )
    stacked = torch.stack(inputs)  # (K, N, 3, S, S)
    count = min(cfg.sets_per_batch, len(groups))
    model.train()
    curve: Curve = []
    for step in tqdm(range(cfg.steps), desc=desc, disable=not progress):
        pick, twin = _draw(groups, kinds, count, gen, cfg.swap_share, cfg.self_share)  # (P, 2, 2), (P,)
        views = stacked[pick[..., 1].reshape(-1), pick[..., 0].reshape(-1)]  # (2P, 3, S, S): pairs adjacent
        views = augment(views, gen, cfg.min_scale, cfg.max_shift)
        z = features(model, views).reshape(count, 2, -1)  # (P, 2, D)
        caps = torch.where(twin, 1.0, cfg.positive_cap)  # (P,): a view's twin is pulled all the way
        loss = info_nce(z[:, 0], z[:, 1], cfg.temperature, caps)
        optimizer_step(optimizer, schedule, loss, model.parameters())
        curve.append((step, float(loss.detach())))
    model.eval()
    return curve


def background_twins(data: ViewData, segmenter: Segmenter, seed: int) -> tuple[ViewData, ViewData]:
    """Two copies of the views, each subject (cut with its dataset mask) pasted on a background drawn by
    the toy world's painters (a pool of ``BACKGROUND_POOL``), with the segmenter's masks of the new images:
    the same subject in the same pose on two backgrounds, as DINO-Seg sees it."""
    rng = np.random.default_rng([seed, 37])
    size, painters = data.images.shape[1], sorted(PAINTERS)
    pool = []
    for k in range(BACKGROUND_POOL):
        canvas = Canvas(size, 2)
        paint_background(canvas, painters[k % len(painters)], rng)
        pool.append(canvas.finish()[0])
    twins = []
    for _ in range(2):
        backgrounds = np.stack([pool[k] for k in rng.integers(len(pool), size=len(data))])  # (N, H, W, 3)
        images = np.where(data.masks[..., None], data.images, backgrounds)
        masks = np.stack(segmenter([Image.fromarray(x) for x in images], None))
        twins.append(replace(data, images=images, predicted_masks=masks))
    return twins[0], twins[1]


def _train(
    data: ViewData, cfg: DinoTrainConfig, family: str, folder: Path, progress: bool, segmenter=None
) -> Curve:
    model, processor = build_dino(cfg, family)
    needs = "segmented" in cfg.inputs or cfg.swap_share > 0
    if needs and segmenter is None:
        raise ValueError(f"toy {family}: segmented inputs and background twins need the toy segmenter")
    if needs:
        data = replace(
            data, predicted_masks=np.stack(segmenter([data.pil(i) for i in range(len(data))], None))
        )
    inputs = [view_pixels(data, processor, kind) for kind in cfg.inputs]
    if cfg.swap_share:
        inputs += [
            view_pixels(twin, processor, "segmented") for twin in background_twins(data, segmenter, cfg.seed)
        ]
    curve = train_contrastive(model, family, inputs, data.groups(), cfg, f"toy {family}", progress)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return curve


def train_dinov2(
    data: ViewData, cfg: DinoTrainConfig, folder: str | Path, progress: bool = True, segmenter=None
) -> Curve:
    """Train the toy ``Dinov2Model`` on ``cfg.inputs`` (toy: subjects masked with the dataset's and the
    toy ``segmenter``'s masks, and background twins); save it with its processor."""
    return _train(data, cfg, "dinov2", Path(folder), progress, segmenter)


def train_dino_v1(data: ViewData, cfg: DinoTrainConfig, folder: str | Path, progress: bool = True) -> Curve:
    """Train the toy DINO v1 ``ViTModel`` on ``cfg.inputs`` (toy: whole images); save it and its processor."""
    return _train(data, cfg, "dino_v1", Path(folder), progress)
