"""One GRPO step (section 3, Alg. 1) on the library's pieces: rollouts, rewards, advantages, updates.

A step takes B conditions (one per (reference, prompt) pair) and:

1. ``rollout``s a group of G SDE samples for each (no gradient);
2. scores each group with an identity and a prompt reward, ``r_id`` and ``r_prompt`` ``[B, G]`` (the
   caller's ``score`` function: the trainer passes ``RewardSet.score``, tests a known function of the
   image);
3. normalises each within its group (Eq. 8) and combines them per sampling step with the TDW weights
   (Eq. 12) and the configured aggregation (``linear``: naive GRPO; ``sars``: Eq. 10-11), ``A [B, G, T]``;
4. for ``grpo.inner_epochs`` passes, recomputes the log-probabilities of the trained transitions (the
   K steps of ``train_steps``, the same for every sample of the step) with gradient and minimises the
   clipped surrogate (Eq. 7) with AdamW, plus ``grpo.kl_coef`` times the KL of each trained SDE step to the
   base policy's (the LoRA switched off; Flow-GRPO's term; 0 in the paper, so no reference pass is made).

What one optimiser update accumulates: the samples are visited in order (group 0's G samples, then group
1's, ...); each sample's loss is the mean over its K trained transitions, and an update averages the
losses of ``grpo.samples_per_update`` consecutive samples (None: all B x G samples of the step, one update
per inner epoch; the released trainer: 4, i.e. 3 updates per 12-sample group). The gradient is clipped
to ``grpo.max_grad_norm`` before each update. At the first update of a step the parameters are those that
sampled the rollouts, so its ratio is exactly 1 (fp32); later updates of the step are off-policy by the
updates before them, which the ratio clip bounds.

Data parallel (:mod:`cgrpo_core.training.distributed`): each rank runs this step on its share of the
step's groups and the gradients of each update are averaged over the ranks. With ``samples_per_update``
None (one update per inner epoch) that is the update one process makes on all the groups; with a
number, each update averages that many samples per rank (the released trainer's per-GPU accumulation).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from cgrpo_core.advantages import combine_advantages, conflict_stats, group_normalize
from cgrpo_core.flow_matching import SDEStep
from cgrpo_core.losses import gaussian_kl, grpo_loss
from cgrpo_core.policy.conditioning import Condition
from cgrpo_core.policy.config import SamplerConfig
from cgrpo_core.policy.loading import Policy
from cgrpo_core.policy.lora import lora_disabled
from cgrpo_core.policy.sampling import Rollout, rollout, step_distribution
from cgrpo_core.schedules import tdw_weights
from cgrpo_core.training.config import GRPOConfig
from cgrpo_core.training.distributed import SINGLE_PROCESS, Dist
from cgrpo_core.training.steps import train_steps

__all__ = ["GroupScores", "StepResult", "UpdateStats", "grpo_step", "step_advantages", "update_policy"]

# the step's B groups -> (r_id [B, G], r_prompt [B, G]), scored on each ``group.images`` (G, H, W, 3) uint8.
GroupScores = Callable[[Sequence[Rollout]], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class UpdateStats:
    """One optimiser update: the surrogate loss, the ratio's mean, the share of clipped ratios, the
    approximate KL to the sampling policy (0.5 E[log_ratio^2]) and the gradient norm before clipping."""

    loss: float
    ratio: float
    clip_fraction: float
    approx_kl: float
    grad_norm: float
    kl_to_base: float | None = None  # the KL term (grpo.kl_coef > 0): to the base policy, per transition


@dataclass(frozen=True)
class StepResult:
    """What a step did: the raw rewards and their group-normalised advantages ``[B, G]``, the combined
    advantages ``[B, G, T]``, the trained
    step indices ``[K]``, the identity/prompt conflict statistics (Fig. 7a), every update's stats
    (``updates[0].ratio`` is the on-policy ratio, exactly 1 in fp32) and the wall seconds of the step's
    three parts: sampling (rollouts and decoding), reward (scoring) and update (advantages, the inner
    epochs' forward and backward passes, the optimiser)."""

    r_id: Tensor
    r_prompt: Tensor
    a_id: Tensor
    a_prompt: Tensor
    advantages: Tensor
    steps: Tensor
    conflict: dict[str, float]
    updates: list[UpdateStats]
    seconds: dict[str, float]


def step_advantages(
    r_id: Tensor, r_prompt: Tensor, grpo: GRPOConfig, num_steps: int
) -> tuple[Tensor, Tensor, Tensor]:
    """``(A [B, G, T], a_id [B, G], a_prompt [B, G])`` of the rewards ``[B, G]``: Eq. 8 per reward, then
    the Eq. 12 weights per step and the configured aggregation (naive GRPO: ``linear``, ``static``)."""
    eps, adv = grpo.advantage.std_eps, grpo.advantage
    a_id, a_prompt = group_normalize(r_id.float(), eps), group_normalize(r_prompt.float(), eps)
    w_id, w_prompt = tdw_weights(grpo.tdw, num_steps, dtype=torch.float32)
    return combine_advantages(a_id, a_prompt, w_id, w_prompt, adv.method, adv.alpha, adv.clip), a_id, a_prompt


def _chunks(total: int, size: int | None) -> list[range]:
    size = total if size is None else size
    return [range(start, min(start + size, total)) for start in range(0, total, size)]


def update_policy(
    policy: Policy,
    groups: Sequence[Rollout],
    advantages: Tensor,
    steps: Tensor,
    grpo: GRPOConfig,
    optimizer: torch.optim.Optimizer,
    dist: Dist = SINGLE_PROCESS,
) -> list[UpdateStats]:
    """One inner epoch over the step's samples (module docstring): ``[B, G, T]`` ``advantages``, the
    trained ``steps`` ``[K]``; returns one :class:`UpdateStats` per optimiser update. In a data-parallel
    run each rank passes its own groups and the gradients are averaged over the ranks before clipping."""
    group_size = groups[0].latents.shape[0]
    order = [(b, g) for b in range(len(groups)) for g in range(group_size)]
    params = policy.trainable_parameters()
    out = []
    for chunk in _chunks(len(order), grpo.samples_per_update):
        optimizer.zero_grad(set_to_none=True)
        parts = []
        for k in chunk:
            b, g = order[k]
            group = groups[b]
            samples = torch.full_like(steps, g)
            current = step_distribution(policy, group, samples, steps)  # (K,) transitions, with grad
            new = current.log_prob
            old = group.log_probs[g, steps.to(group.log_probs.device)].to(new.device)
            adv = advantages[b, g, steps.to(advantages.device)].to(new.device, new.dtype)
            kl = _kl_to_base(policy, group, samples, steps, current) if grpo.kl_coef > 0 else None
            part = grpo_loss(new, old, adv, grpo.clip_range, grpo.kl_coef, kl)
            (part.loss / len(chunk)).backward()
            parts.append(part)
        if not all(bool(torch.isfinite(p.loss.detach())) for p in parts):
            raise FloatingPointError("the GRPO loss is not finite")
        dist.all_reduce_grads(params)
        norm = torch.nn.utils.clip_grad_norm_(params, grpo.max_grad_norm)
        if not torch.isfinite(norm):
            raise FloatingPointError("the gradient norm is not finite")
        optimizer.step()
        out.append(
            UpdateStats(
                loss=float(sum(float(p.loss.detach()) for p in parts) / len(parts)),
                ratio=float(sum(float(p.ratio_mean) for p in parts) / len(parts)),
                clip_fraction=float(sum(float(p.clip_fraction) for p in parts) / len(parts)),
                approx_kl=float(sum(float(p.approx_kl) for p in parts) / len(parts)),
                grad_norm=float(norm),
                kl_to_base=float(sum(float(p.kl) for p in parts) / len(parts)) if grpo.kl_coef > 0 else None,
            )
        )
    return out


def _kl_to_base(policy: Policy, group: Rollout, samples: Tensor, steps: Tensor, current: SDEStep) -> Tensor:
    """Per-transition KL ``[K]`` of the current SDE step to the base policy's (the LoRA switched off, no
    gradient) at the same stored states: ``|mu - mu_base|^2 / (2 std^2)`` (Flow-GRPO's KL term; both steps
    have the rollout's std)."""
    with torch.no_grad(), lora_disabled(policy.transformer):
        base = step_distribution(policy, group, samples, steps)
    return gaussian_kl(current.mean, base.mean, current.std)


def grpo_step(
    policy: Policy,
    conds: Sequence[Condition],
    score: GroupScores,
    grpo: GRPOConfig,
    sampler: SamplerConfig,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator | Sequence[torch.Generator],
    steps: Tensor | None = None,
    dist: Dist = SINGLE_PROCESS,
) -> StepResult:
    """One GRPO step on the conditions ``conds`` (module docstring).

    ``generator`` draws the rollouts' noise: one generator for every group, or one per condition (the
    trainer's, seeded by step and pair, so a group's samples do not depend on which process draws it).
    ``steps``: the trained step indices ``[K]`` (None: drawn from the single ``generator`` after the
    rollouts). ``dist``: a data-parallel run's place; the gradients are averaged over its ranks.
    """
    if not conds:
        raise ValueError("a GRPO step needs at least one (reference, prompt) condition")
    generators = [generator] * len(conds) if isinstance(generator, torch.Generator) else list(generator)
    if len(generators) != len(conds):
        raise ValueError(f"{len(generators)} generators for {len(conds)} conditions: pass one per condition")
    if steps is None and not isinstance(generator, torch.Generator):
        raise ValueError("with one generator per condition, pass the trained steps too")
    start = time.perf_counter()
    groups = [
        rollout(policy, cond, grpo.group_size, sampler, gen)
        for cond, gen in zip(conds, generators, strict=True)
    ]
    sampled = time.perf_counter()
    r_id, r_prompt = score(groups)
    scored = time.perf_counter()
    expected = (len(groups), grpo.group_size)
    if tuple(r_id.shape) != expected or tuple(r_prompt.shape) != expected:
        raise ValueError(
            f"score must return two [B, G] = {list(expected)} reward tensors, got "
            f"{list(r_id.shape)} and {list(r_prompt.shape)}"
        )
    for name, r in (("identity", r_id), ("prompt", r_prompt)):
        if not bool(torch.isfinite(r).all()):
            raise FloatingPointError(f"the {name} reward is not finite for some samples: {r.tolist()}")
    advantages, a_id, a_prompt = step_advantages(r_id, r_prompt, grpo, sampler.num_steps)
    if steps is None:
        seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
        steps = train_steps(grpo, sampler, torch.Generator().manual_seed(seed))
    steps = steps.to(groups[0].latents.device)
    updates = []
    for _ in range(grpo.inner_epochs):
        updates += update_policy(policy, groups, advantages, steps, grpo, optimizer, dist)
    seconds = {
        "sampling": sampled - start,
        "reward": scored - sampled,
        "update": time.perf_counter() - scored,
    }
    conflict = conflict_stats(a_id, a_prompt)
    return StepResult(r_id, r_prompt, a_id, a_prompt, advantages, steps, conflict, updates, seconds)
