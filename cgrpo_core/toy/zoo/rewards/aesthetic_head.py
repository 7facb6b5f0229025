"""Toy LAION aesthetic head: ``nn.Linear(P, 1)`` on L2-normalised toy-CLIP image embeddings.

LAION's predictor (``sa_0_4_vit_l_14_linear.pth``) is a linear regression from CLIP ViT-L/14 image
embeddings to human ratings (1-10). The toy world has no raters; what it knows about quality is how a
render was degraded. So the toy head regresses every toy SynCD view to ``clean_score`` and degraded copies
of it (the toy world's own ``render.degrade``: blur, blocking or washed-out contrast plus noise) to
``degraded_score``, on a LAION-like scale so that the filter's thresholds read as on the real one
(aesthetic_min 5: between the two). The planted low-quality views of the toy SynCD are trained as clean,
label noise as real ratings have.

The embeddings come from the trained toy CLIP through the aesthetic reward's own path (the checkpoint's
processor, ``get_image_features``, L2 norm); the head is fitted by full-batch AdamW on the mean squared
error and saved as LAION's file: a ``torch.save``d state dict ``{"weight": [1, P], "bias": [1]}``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from cgrpo_core.rewards.aesthetic import save_aesthetic_head
from cgrpo_core.rewards.config import EmbeddingRewardConfig
from cgrpo_core.rewards.embeddings import load_image_encoder
from cgrpo_core.toy.zoo.rewards.config import AestheticTrainConfig, DegradationConfig
from cgrpo_core.toy.zoo.rewards.data import ViewData, degrade_view
from cgrpo_core.training.optim import Curve, adamw, optimizer_step

__all__ = ["HEAD_FILE", "fit_linear_head", "train_aesthetic_head"]

HEAD_FILE = "sa_0_4_vit_l_14_linear.pth"  # LAION's file name (AestheticConfig.head_file)


def fit_linear_head(
    features: torch.Tensor, targets: torch.Tensor, cfg: AestheticTrainConfig, progress: bool = True
) -> tuple[torch.nn.Linear, Curve]:
    """``nn.Linear(D, 1)`` fitted to ``targets`` [N] from ``features`` [N, D] (full-batch AdamW on the MSE),
    and its (step, MSE) curve."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        head = torch.nn.Linear(features.shape[1], 1)
    with torch.no_grad():
        head.bias.fill_(float(targets.mean()))  # start at the mean score: the MSE then only fits the slope
    optimizer, schedule = adamw(head.parameters(), cfg.learning_rate, cfg.weight_decay)
    curve: Curve = []
    for step in tqdm(range(cfg.steps), desc="toy aesthetic head", disable=not progress):
        loss = F.mse_loss(head(features).squeeze(-1), targets)
        optimizer_step(optimizer, schedule, loss, head.parameters())
        curve.append((step, float(loss.detach())))
    return head.eval(), curve


def train_aesthetic_head(
    data: ViewData,
    clip_dir: str | Path,
    cfg: AestheticTrainConfig,
    degradation: DegradationConfig,
    folder: str | Path,
    progress: bool = True,
) -> Curve:
    """Fit the head on the toy CLIP in ``clip_dir`` and save it as ``folder/HEAD_FILE``; returns its curve."""
    encoder = load_image_encoder(
        EmbeddingRewardConfig(family="clip", model_id="toy/clip", local_dir=str(clip_dir))
    )
    rng = np.random.default_rng([cfg.seed, 11])
    clean = [data.pil(i) for i in range(len(data))]
    degraded = [
        Image.fromarray(degrade_view(data.images[i], rng, degradation)[0])
        for _ in range(cfg.copies)
        for i in range(len(data))
    ]
    features = F.normalize(encoder.embed(clean + degraded), dim=-1)  # (N * (1 + copies), P)
    targets = torch.tensor([cfg.clean_score] * len(clean) + [cfg.degraded_score] * len(degraded))
    head, curve = fit_linear_head(features, targets, cfg, progress)
    save_aesthetic_head(head, Path(folder) / HEAD_FILE)
    return curve
