"""The toy UNO: pretrain the whole tiny FLUX transformer by flow matching on toy SynCD pairs.

UNO (Wu et al. 2025) is FLUX.1-dev fine-tuned to generate a target view of a subject from a reference view
in context and the target's caption. The toy base policy learns the same task from scratch, through the
real policy code path: the condition is what :func:`cgrpo_core.policy.encode_condition` builds (T5 states
and CLIP pooled vector of the caption, the reference's VAE latents packed into tokens after the target
grid with UnoPE ids) and the prediction is :func:`cgrpo_core.policy.velocity`. Objective (paper Eq. 3-4,
UNO ``train.py``)::

    z_sigma = (1 - sigma) * x0 + sigma * noise,   loss = mean |v_theta(z_sigma, sigma, cond) - (noise - x0)|^2

with x0 the target view's scaled VAE latents (posterior mean, as the policy encodes references) and sigma
from the shifted schedule at a uniform position (UNO) or a shifted logit-normal (SD3).

Deviations from UNO's trainer, all because the toy model starts from nothing: the whole transformer trains
(not a LoRA on a pretrained FLUX); the text encoders stay frozen at their random init (FLUX and UNO freeze
theirs too; a frozen random encoder is a fixed injective feature map of the caption that the transformer's
context embedder learns to read); the guidance embedding is fed the sampler's 3.5 (UNO trains at 1 and
samples at 4: a constant either way); no caption dropout (no classifier-free guidance is used); a cosine
learning-rate decay and an EMA of the weights (UNO: constant rate, optional EMA) make a 5-minute run
converge. Text embeddings and latents are computed once before training (the released Customized-GRPO
trainer also precomputes its text embeddings).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from cgrpo_core.flow_matching import add_noise
from cgrpo_core.losses import flow_matching_loss
from cgrpo_core.policy import (
    Condition,
    Policy,
    PolicyConfig,
    encode_condition,
    encode_prompt,
    encode_references,
    load_policy,
    velocity,
)
from cgrpo_core.toy.tiny.policy import (
    build_tiny_checkpoint,
    default_corpus,
    replace_component,
    require_component,
)
from cgrpo_core.toy.zoo.policy.config import ZooPolicyConfig
from cgrpo_core.toy.zoo.policy.data import TrainingPair, toy_captions, training_pairs, world_resolution
from cgrpo_core.training.optim import Curve, adamw, optimizer_step, warmup_cosine

__all__ = [
    "SIGMA_SAMPLERS",
    "EncodedPairs",
    "build_base_checkpoint",
    "encode_pairs",
    "logit_normal",
    "shifted_uniform",
    "train_toy_base_policy",
    "trainable_policy",
]


def _shift(u: Tensor, shift: float) -> Tensor:
    return shift * u / (1.0 + (shift - 1.0) * u)  # the time shift of flow_matching.shifted_sigmas


def shifted_uniform(n: int, shift: float, generator: torch.Generator) -> Tensor:
    """``[n]`` sigmas: the shifted schedule at uniform positions (UNO: a uniform index into it)."""
    return _shift(torch.rand(n, generator=generator), shift)


def logit_normal(n: int, shift: float, generator: torch.Generator) -> Tensor:
    """``[n]`` sigmas: ``sigmoid(N(0, 1))`` (SD3's logit-normal), then shifted."""
    return _shift(torch.sigmoid(torch.randn(n, generator=generator)), shift)


# name -> sampler of training noise levels; the config Literal SigmaSampling lists the same names.
SIGMA_SAMPLERS = {"shifted_uniform": shifted_uniform, "logit_normal": logit_normal}


def build_base_checkpoint(world_dir: str | Path, folder: str | Path, cfg: ZooPolicyConfig) -> Path:
    """The untrained tiny checkpoint (FLUX.1-dev layout) with tokenizers built on the toy captions."""
    return build_tiny_checkpoint(folder, cfg.tiny, corpus=default_corpus(toy_captions(world_dir)))


def trainable_policy(folder: str | Path) -> Policy:
    """The checkpoint through the real loader, float32, no LoRA, the whole transformer trainable."""
    cfg = PolicyConfig(
        model_folder=str(folder), uno_lora=None, dtype="float32", lora_rank=0, gradient_checkpointing=False
    )
    policy = load_policy(cfg)
    policy.transformer.requires_grad_(True)
    policy.transformer.train()
    return policy


@dataclass(frozen=True)
class EncodedPairs:
    """Every pair's condition and target, encoded once. Notation: P pairs, U captions, I images."""

    prompt_embeds: Tensor  # (U, L, D_t5)
    pooled: Tensor  # (U, D_clip)
    tokens: Tensor  # (I, N, 4C) scaled, packed VAE latents: reference tokens and targets alike
    caption: Tensor  # (P,) index into prompt_embeds / pooled
    reference: Tensor  # (P,) index into tokens
    target: Tensor  # (P,) index into tokens
    template: Condition  # ids, grid and resolution shared by every pair

    def condition(self, index: Tensor) -> Condition:
        """The batched condition of pairs ``index`` ``[B]``."""
        return replace(
            self.template,
            prompt_embeds=self.prompt_embeds[self.caption[index]],
            pooled_embeds=self.pooled[self.caption[index]],
            ref_tokens=self.tokens[self.reference[index]],
        )


@torch.no_grad()
def encode_pairs(
    policy: Policy, pairs: list[TrainingPair], resolution: int, progress: bool = False
) -> EncodedPairs:
    """Encode every distinct caption and image of ``pairs`` once, with the policy's own encoders."""
    captions = list(dict.fromkeys(p.caption for p in pairs))
    images = list(dict.fromkeys(path for p in pairs for path in (p.reference, p.target)))
    texts = [encode_prompt(policy, c) for c in tqdm(captions, desc="encode captions", disable=not progress)]
    tokens = [
        encode_references(policy, [path], resolution)[0]
        for path in tqdm(images, desc="encode images", disable=not progress)
    ]
    caption_id = {c: k for k, c in enumerate(captions)}
    image_id = {path: k for k, path in enumerate(images)}
    return EncodedPairs(
        prompt_embeds=torch.cat([t[0] for t in texts]),
        pooled=torch.cat([t[1] for t in texts]),
        tokens=torch.cat(tokens),
        caption=torch.tensor([caption_id[p.caption] for p in pairs]),
        reference=torch.tensor([image_id[p.reference] for p in pairs]),
        target=torch.tensor([image_id[p.target] for p in pairs]),
        template=encode_condition(policy, pairs[0].caption, pairs[0].reference, resolution),
    )


def _batches(num: int, batch_size: int, generator: torch.Generator):
    """Endless batches of indices: epochs of seeded permutations, each batch within one epoch."""
    size = min(batch_size, num)
    while True:
        order = torch.randperm(num, generator=generator)
        for start in range(0, num - size + 1, size):
            yield order[start : start + size]


def train_toy_base_policy(
    world_dir: str | Path, checkpoint_folder: str | Path, cfg: ZooPolicyConfig, progress: bool = True
) -> Curve:
    """Flow-matching pretraining of the checkpoint's transformer on toy SynCD pairs; saved in place.

    Train the VAE first (:func:`cgrpo_core.toy.zoo.train_toy_vae`): latents come from the checkpoint's VAE.
    Returns the training curve ``[(step, loss)]``; seeded by ``cfg.seed``, deterministic on a CPU.
    """
    folder = require_component(checkpoint_folder, "transformer")
    train = cfg.policy
    sampler = SIGMA_SAMPLERS[train.sigma_sampling]
    policy = trainable_policy(folder)
    data = encode_pairs(policy, training_pairs(world_dir), world_resolution(world_dir), progress)
    model = policy.transformer
    optimizer, schedule = adamw(
        model.parameters(),
        train.learning_rate,
        train.weight_decay,
        warmup_cosine(train.steps, train.warmup_steps),
    )
    ema = copy.deepcopy(model).requires_grad_(False) if train.ema_decay is not None else None
    generator = torch.Generator().manual_seed(cfg.seed)
    batches = _batches(len(data.caption), train.batch_size, generator)
    curve: Curve = []
    bar = tqdm(range(train.steps), desc="toy base policy", disable=not progress)
    for step in bar:
        index = next(batches)
        x0 = data.tokens[data.target[index]]  # (B, N, D)
        noise = torch.randn(x0.shape, generator=generator)
        sigma = sampler(len(index), train.sigma_shift, generator)  # (B,)
        pred = velocity(policy, data.condition(index), add_noise(x0, noise, sigma), sigma, train.guidance)
        loss = flow_matching_loss(pred, x0, noise)
        optimizer_step(optimizer, schedule, loss, model.parameters(), train.max_grad_norm)
        if ema is not None:
            with torch.no_grad():
                for avg, param in zip(ema.parameters(), model.parameters(), strict=True):
                    avg.lerp_(param, 1.0 - train.ema_decay)
        curve.append((step, loss.item()))
        bar.set_postfix(loss=f"{loss.item():.4f}")
    final = ema if ema is not None else model
    final.eval()
    replace_component(final, folder / "transformer")
    return curve
