"""Training objectives: GRPO clipped surrogate, flow-matching SFT loss, and RPO (DPO + similarity).

Notation: N samples (any leading shape), sigma the noise level, v the velocity (flow_matching.py).

GRPO (paper Eq. 7): with per-sample, per-step advantages ``A`` and ratio ``rho = exp(logp - logp_old)``,
``loss = mean(max(-A * rho, -A * clip(rho, 1 - eps, 1 + eps)))`` (minimised, i.e. the negated
objective), plus an optional KL penalty, off by default as in the paper (§3, following Flow-GRPO and
DanceGRPO).

RPO (Miao et al. 2024, the paper's offline baseline, appendix A.2): the Diffusion-DPO loss written for
flow matching, where a model's "log-likelihood" of an image is replaced by minus its velocity
regression error at a shared noise draw and noise level, plus a similarity loss -- the plain
flow-matching error on images of the subject -- that keeps the fine-tuned model on the reference::

    margin = (err_ref(w) - err_pi(w)) - (err_ref(l) - err_pi(l))
    loss   = -log sigmoid(beta * margin) + sim_weight * mean(err_pi(sim))

``err`` is the per-sample mean squared velocity error of the trained policy ``pi`` or the frozen
reference model ``ref``; ``w``/``l`` the preferred/rejected image of a pair. RPO's release uses
beta = 1 and sim_weight = 1 with the subject's reference images as the similarity set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "GRPOLoss",
    "RPOLoss",
    "flow_matching_loss",
    "gaussian_kl",
    "grpo_loss",
    "rpo_loss",
    "velocity_error",
]


@dataclass(frozen=True)
class GRPOLoss:
    """GRPO loss and its diagnostics (all scalars; ``loss`` carries the gradient)."""

    loss: Tensor
    policy_loss: Tensor
    kl: Tensor
    clip_fraction: Tensor  # share of entries whose ratio left [1 - eps, 1 + eps]
    ratio_mean: Tensor
    approx_kl: Tensor  # 0.5 * E[(logp - logp_old)^2], a cheap drift monitor


def grpo_loss(
    log_prob: Tensor,
    old_log_prob: Tensor,
    advantages: Tensor,
    clip_range: float,
    kl_coef: float,
    kl: Tensor | None = None,
) -> GRPOLoss:
    """Clipped-surrogate GRPO loss (Eq. 7) with per-sample, per-step advantages.

    Args:
        log_prob: log-probabilities of stored transitions under the current parameters, any shape
            (e.g. ``[B*G]`` for one step or ``[B*G, T]`` for several).
        old_log_prob: the same transitions' log-probabilities when they were sampled (no gradient).
        advantages: same shape as ``log_prob`` (combine_advantages output, per step).
        clip_range: epsilon of the ratio clip (released code: 1e-4).
        kl_coef: the KL term's weight (grpo.kl_coef); 0 disables it, as in the paper (section 3).
        kl: per-entry KL estimate to the reference policy (e.g. :func:`gaussian_kl`); needed when kl_coef > 0.
    """
    if log_prob.shape != old_log_prob.shape or log_prob.shape != advantages.shape:
        raise ValueError(
            "log_prob, old_log_prob and advantages must have the same shape, got "
            f"{tuple(log_prob.shape)}, {tuple(old_log_prob.shape)}, {tuple(advantages.shape)}"
        )
    if not clip_range > 0:
        raise ValueError(f"clip_range must be > 0, got {clip_range}")
    if kl_coef < 0:
        raise ValueError(f"kl_coef must be >= 0, got {kl_coef}")
    if kl_coef > 0 and kl is None:
        raise ValueError("kl_coef > 0 needs a kl tensor (see gaussian_kl)")
    advantages = advantages.detach()
    log_ratio = log_prob - old_log_prob.detach()
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    policy_loss = torch.maximum(unclipped, clipped).mean()
    kl_term = (
        kl.mean() if kl is not None else torch.zeros((), dtype=policy_loss.dtype, device=policy_loss.device)
    )
    loss = policy_loss + kl_coef * kl_term if kl_coef > 0 else policy_loss
    with torch.no_grad():
        clip_fraction = ((ratio - 1.0).abs() > clip_range).float().mean()
        approx_kl = 0.5 * (log_ratio**2).mean()
    return GRPOLoss(loss, policy_loss, kl_term.detach(), clip_fraction, ratio.detach().mean(), approx_kl)


def gaussian_kl(mean: Tensor, ref_mean: Tensor, std: float | Tensor) -> Tensor:
    """KL between two SDE steps with equal std: ``mean over non-batch dims of (mu - mu_ref)^2 / (2 std^2)``.

    The per-step KL of Flow-GRPO; ``[batch]``. Use with ``grpo_loss(kl=..., kl_coef=...)``.
    """
    if mean.shape != ref_mean.shape:
        raise ValueError(f"mean {tuple(mean.shape)} and ref_mean {tuple(ref_mean.shape)} must match")
    std = torch.as_tensor(std, dtype=mean.dtype, device=mean.device)
    if std.ndim == 1:
        std = std.view(-1, *([1] * (mean.ndim - 1)))
    kl = (mean - ref_mean.detach()) ** 2 / (2 * std**2)
    return kl.mean(dim=tuple(range(1, mean.ndim))) if mean.ndim > 1 else kl


def velocity_error(pred_velocity: Tensor, x0: Tensor, noise: Tensor) -> Tensor:
    """Per-sample mean squared error to the flow-matching target ``noise - x0``; ``[batch]``."""
    if not (pred_velocity.shape == x0.shape == noise.shape):
        raise ValueError(
            f"pred_velocity {tuple(pred_velocity.shape)}, x0 {tuple(x0.shape)}, "
            f"noise {tuple(noise.shape)} "
            "must have the same shape"
        )
    err = (pred_velocity.float() - (noise.float() - x0.float())) ** 2
    return err.mean(dim=tuple(range(1, err.ndim))) if err.ndim > 1 else err


def flow_matching_loss(
    pred_velocity: Tensor, x0: Tensor, noise: Tensor, weights: Tensor | None = None
) -> Tensor:
    """SFT loss (Eq. 4): mean over samples of the velocity MSE, optionally weighted per sample."""
    err = velocity_error(pred_velocity, x0, noise)
    if weights is None:
        return err.mean()
    if weights.shape != err.shape:
        raise ValueError(f"weights must have shape [batch]={tuple(err.shape)}, got {tuple(weights.shape)}")
    return (weights * err).sum() / weights.sum().clamp_min(1e-12)


@dataclass(frozen=True)
class RPOLoss:
    """RPO loss and its diagnostics."""

    loss: Tensor
    preference_loss: Tensor
    similarity_loss: Tensor
    margin: Tensor  # mean beta-free margin (positive: policy prefers the winner more than the reference does)
    accuracy: Tensor  # share of pairs with a positive margin


def rpo_loss(
    policy_err_win: Tensor,
    ref_err_win: Tensor,
    policy_err_lose: Tensor,
    ref_err_lose: Tensor,
    policy_err_sim: Tensor | None,
    beta: float,
    sim_weight: float,
) -> RPOLoss:
    """RPO objective: flow-matching Diffusion-DPO plus a similarity loss (module docstring).

    Args:
        policy_err_win, ref_err_win, policy_err_lose, ref_err_lose: ``[P]`` per-pair velocity errors
            (:func:`velocity_error`) of the policy and the frozen reference on the preferred and the
            rejected image, each pair sharing one noise draw and noise level.
        policy_err_sim: ``[S]`` policy errors on the similarity set (subject images); None disables it.
        beta: DPO temperature on the error margin (RPO release: 1).
        sim_weight: weight of the similarity loss (RPO release: 1).
    """
    shapes = {t.shape for t in (policy_err_win, ref_err_win, policy_err_lose, ref_err_lose)}
    if len(shapes) != 1 or policy_err_win.ndim != 1:
        raise ValueError(
            f"the four pair errors must be [P] tensors of one shape, got {sorted(map(tuple, shapes))}"
        )
    if beta <= 0 or sim_weight < 0:
        raise ValueError(f"need beta > 0 and sim_weight >= 0, got beta={beta}, sim_weight={sim_weight}")
    margin = (ref_err_win.detach() - policy_err_win) - (ref_err_lose.detach() - policy_err_lose)  # (P,)
    preference = -F.logsigmoid(beta * margin).mean()
    if policy_err_sim is None:
        similarity = torch.zeros((), dtype=preference.dtype, device=preference.device)
    else:
        similarity = policy_err_sim.mean()
    loss = preference + sim_weight * similarity
    return RPOLoss(loss, preference, similarity, margin.detach().mean(), (margin.detach() > 0).float().mean())
