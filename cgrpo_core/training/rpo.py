"""RPO (Miao et al. 2024), the paper's offline preference baseline (appendix A.2, Table 2 'RPO'): preference
pairs ranked by RPO's lambda-Harmonic reward, then Diffusion-DPO on them plus a similarity loss.

**1. Preference data** (:func:`build_preferences`, once per run, before training). For every training pair
(reference photo, target photo, prompt), the frozen base policy (LoRA disabled) draws ``rpo.candidates`` ODE
samples, candidate k from the noise of a generator seeded by ``derive_seed(S, "candidate", pair.index, k)``.
Appendix A.2 conditions them "solely on text prompts" (RPO samples its base model from prompts alone), which
is ``rpo.candidate_reference = False``; True adds the reference photo, UNO's usual input. The caller's
``score(pair, images)`` gives the identity and prompt rewards ``r_id, r_prompt`` ``[n]`` of the n candidates.

**Pairing rule** (what "RPO's core Harmonic Mean reward aggregation ... to distinguish between winning and
losing samples" is taken to mean here). Within one pair's n candidates each reward is min-max normalised,
``s = (r - min r) / (max r - min r)`` (a reward equal for all candidates tells none apart: s = 1 for all),
and combined by RPO's lambda-Harmonic reward with lambda = ``rpo.reward_lambda`` (the identity weight,
0.3: RPO's ``reward_lambda``; see the field for what its release labels with)::

    H = 1 / (lambda / s_id + (1 - lambda) / s_prompt)
      = s_id * s_prompt / (lambda * s_prompt + (1 - lambda) * s_id)

(0 where either s is 0: the harmonic mean is non-compensatory). The winner is the candidate of highest H,
the loser the one of lowest H; ties in H go to the higher (for the loser: lower) arithmetic mean
``lambda * s_id + (1 - lambda) * s_prompt``, then to the lower index. When every candidate ties on both, no
candidate is preferred: the loser is the winner, and the pair's DPO margin and gradient are 0.

Why so: RPO's harmonic reward maps each similarity into [0, 1] ((cos + 1) / 2) before combining them; our two
rewards live on unrelated scales (DINO-Seg cosine, HPSv3 ~ 0-15), and min-max normalisation within the
candidates is the scale-free way to put both on [0, 1], so lambda weighs them as RPO intends whatever the
reward models. Deviation from RPO's release: it pairs each generated image against a *reference photo* with a
label drawn from Bradley-Terry, Bernoulli(sigmoid(H_ref - H_gen)); appendix A.2 tells winners from losers
among the base model's candidates, so both images of a pair are candidates here, the best against the worst
(the most decisive pair), and the subject photo enters through the similarity loss, as in RPO. The winner
and the loser share one noise draw and noise level (Diffusion-DPO; RPO's release draws them apart).

The file (``torch.save``, written atomically) holds per pair, in training-list order: the winner's and the
loser's clean latents (packed tokens ``[P, N, D]`` float32), both rewards of all candidates ``[P, n]``, the
winner and loser indices ``[P]``, the pair's ``index`` ``[P]``, and the settings that made them (10k pairs at
512 px: 2 x 10k x 1024 x 64 floats, 5.2 GB; the trainer memory-maps it). A file that exists is returned as
is: a resumed run does not rebuild it.

**2. Training** (:class:`RPOTrainer`). Step s takes the B = ``rpo.batch_size`` rows ``step_pairs(P, B, S,
s)`` (this rank's share), each trained under the condition the policy generates with, (prompt, reference).
For the row at place k, a generator seeded by ``derive_seed(S, "rpo", s, k)`` draws one noise and one sigma
(``shift(u)``, u ~ U(0, 1), as SFT) that the winner and the loser share, then the similarity term's own noise
and sigma. With ``err(x0) = mean |v(x_sigma) - (noise - x0)|^2`` (:func:`~cgrpo_core.losses.velocity_error`)::

    margin = (err_ref(w) - err_pi(w)) - (err_ref(l) - err_pi(l))
    loss   = -log sigmoid(beta * margin) + sim_weight * err_pi(target photo)

(:func:`~cgrpo_core.losses.rpo_loss`). ``pi`` is the policy (LoRA on), ``ref`` the same transformer with its
LoRA disabled (:func:`~cgrpo_core.policy.lora.lora_disabled`): the frozen base, with no second copy of the
transformer. The loss is the mean over the share (each pair back-propagated on its own), gradients are
averaged over the ranks, clipped to ``rpo.max_grad_norm`` and applied by AdamW at a constant
``rpo.learning_rate``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from cgrpo_core.flow_matching import add_noise
from cgrpo_core.losses import RPOLoss, rpo_loss, velocity_error
from cgrpo_core.policy.conditioning import Condition, encode_condition
from cgrpo_core.policy.config import SamplerConfig
from cgrpo_core.policy.images import decode_latents, to_pil
from cgrpo_core.policy.loading import Policy
from cgrpo_core.policy.lora import lora_disabled
from cgrpo_core.policy.sampling import initial_noise, sample, velocity
from cgrpo_core.store import atomic_write
from cgrpo_core.training.config import RPOConfig
from cgrpo_core.training.data import TrainPair, derive_seed, shard, step_pairs
from cgrpo_core.training.distributed import SINGLE_PROCESS, Dist
from cgrpo_core.training.optim import adamw
from cgrpo_core.training.sft import apply_update, check_pairs, draw_noise, target_latents

__all__ = [
    "PairScorer",
    "RPOTrainer",
    "build_preferences",
    "harmonic_reward",
    "load_preferences",
    "minmax_normalize",
    "pair_errors",
    "pick_pair",
    "rpo_steps",
]

# (pair, its n candidate images) -> (r_id [n], r_prompt [n])
PairScorer = Callable[[TrainPair, list[Image.Image]], tuple[Tensor, Tensor]]

_ROW_KEYS = ("winner", "loser", "r_id", "r_prompt", "winner_index", "loser_index")


def rpo_steps(num_pairs: int, rpo: RPOConfig) -> int:
    """Optimiser steps of an RPO run: ``epochs * ceil(num_pairs / batch_size)`` (one preference pair per
    training pair), at most ``max_steps``."""
    if num_pairs < 1:
        raise ValueError("the training list is empty: run prepare-syncd first (or loosen data.filter)")
    steps = rpo.epochs * math.ceil(num_pairs / rpo.batch_size)
    return steps if rpo.max_steps is None else min(steps, rpo.max_steps)


# ---------------------------------------------------------------------------------------------------
# The pairing rule


def minmax_normalize(r: Tensor) -> Tensor:
    """``[n]`` rewards to [0, 1] within the candidates; a constant reward gives 1 for every candidate."""
    r = r.double()
    low, high = r.min(), r.max()
    if high == low:
        return torch.ones_like(r)
    return (r - low) / (high - low)


def harmonic_reward(s_id: Tensor, s_prompt: Tensor, lam: float) -> Tensor:
    """RPO's lambda-Harmonic reward ``1 / (lam / s_id + (1 - lam) / s_prompt)`` of rewards in [0, 1], 0 where
    either is 0 (lam = 0: ``s_prompt``; lam = 1: ``s_id``)."""
    if not 0 <= lam <= 1:
        raise ValueError(f"lambda must lie in [0, 1], got {lam}")
    if lam == 0:
        return s_prompt.clone()
    if lam == 1:
        return s_id.clone()
    den = lam * s_prompt + (1 - lam) * s_id  # 0 only where both are 0, and then so is the numerator
    return s_id * s_prompt / torch.where(den > 0, den, torch.ones_like(den))


def pick_pair(r_id: Tensor, r_prompt: Tensor, lam: float) -> tuple[int, int]:
    """``(winner, loser)`` candidate indices of one pair by the pairing rule (module docstring)."""
    if r_id.ndim != 1 or r_id.shape != r_prompt.shape or r_id.numel() < 2:
        raise ValueError(
            f"need two [n] reward tensors, n >= 2, got {tuple(r_id.shape)} and {tuple(r_prompt.shape)}"
        )
    s_id, s_prompt = minmax_normalize(r_id), minmax_normalize(r_prompt)
    harmonic = harmonic_reward(s_id, s_prompt, lam).tolist()
    arithmetic = (lam * s_id + (1 - lam) * s_prompt).tolist()
    keys = list(zip(harmonic, arithmetic, strict=True))
    winner = max(range(len(keys)), key=lambda k: keys[k])  # the first of equal keys: the lowest index
    loser = min(range(len(keys)), key=lambda k: keys[k])
    if keys[winner] == keys[loser]:
        loser = winner  # no candidate ranks above another: no preference
    return winner, loser


# ---------------------------------------------------------------------------------------------------
# Preference data


def _candidate_condition(policy: Policy, pair: TrainPair, rpo: RPOConfig, resolution: int) -> Condition:
    references = [pair.reference] if rpo.candidate_reference else []
    return encode_condition(policy, pair.prompt, references, resolution)


@torch.no_grad()
def _preference_row(
    policy: Policy, pair: TrainPair, score: PairScorer, rpo: RPOConfig, sampler: SamplerConfig, seed: int
) -> dict[str, Tensor]:
    """One pair's candidates, their rewards and its winner and loser (module docstring)."""
    n = rpo.candidates
    cond = _candidate_condition(policy, pair, rpo, sampler.resolution)
    noise = torch.cat(
        [
            initial_noise(
                policy, cond, 1, torch.Generator().manual_seed(derive_seed(seed, "candidate", pair.index, k))
            )
            for k in range(n)
        ]
    )  # (n, N, D)
    with lora_disabled(policy.transformer):
        latents = sample(policy, cond, sampler, n, noise=noise)  # (n, N, D) float32
    r_id, r_prompt = score(pair, to_pil(decode_latents(policy, latents, sampler.resolution)))
    r_id, r_prompt = torch.as_tensor(r_id).float().cpu(), torch.as_tensor(r_prompt).float().cpu()
    if r_id.shape != (n,) or r_prompt.shape != (n,):
        raise ValueError(
            f"score must return two [{n}] reward tensors (one per candidate), got "
            f"{tuple(r_id.shape)} and {tuple(r_prompt.shape)}"
        )
    if not (torch.isfinite(r_id).all() and torch.isfinite(r_prompt).all()):
        raise FloatingPointError(
            f"pair {pair.index}: a candidate's reward is not finite: r_id={r_id.tolist()}, "
            f"r_prompt={r_prompt.tolist()}"
        )
    winner, loser = pick_pair(r_id, r_prompt, rpo.reward_lambda)
    return {
        "winner": latents[winner].cpu(),
        "loser": latents[loser].cpu(),
        "r_id": r_id,
        "r_prompt": r_prompt,
        "winner_index": torch.tensor(winner),
        "loser_index": torch.tensor(loser),
    }


def _save(path: Path, obj: dict) -> None:
    with atomic_write(path, "wb") as handle:
        torch.save(obj, handle)


def _write_preferences(
    path: Path,
    rows: dict[int, dict[str, Tensor]],
    pairs: Sequence[TrainPair],
    rpo: RPOConfig,
    sampler: SamplerConfig,
    seed: int,
) -> None:
    data = {key: torch.stack([rows[k][key] for k in range(len(pairs))]) for key in _ROW_KEYS}
    data["pair_index"] = torch.tensor([p.index for p in pairs])
    data["settings"] = {
        "seed": seed,
        "candidates": rpo.candidates,
        "reward_lambda": rpo.reward_lambda,
        "candidate_reference": rpo.candidate_reference,
        **sampler.model_dump(),
    }
    _save(path, data)


def build_preferences(
    policy: Policy,
    pairs: Sequence[TrainPair],
    score: PairScorer,
    rpo: RPOConfig,
    sampler: SamplerConfig,
    seed: int,
    path: str | Path,
    dist: Dist = SINGLE_PROCESS,
) -> Path:
    """Offline preference data: for every training pair, ``rpo.candidates`` ODE samples of the frozen base
    policy (LoRA disabled) from per-(seed, pair, candidate) noise, scored by ``score``; winner and loser by
    the pairing rule (module docstring); saved to ``path`` atomically. If ``path`` exists it is returned as
    is (a resumed run does not rebuild it). In a data-parallel run each rank builds every ``world``-th pair
    and rank 0 writes the file; every rank returns once it is written."""
    path = Path(path)
    if path.exists():
        return path
    check_pairs(pairs, 1, SINGLE_PROCESS, "RPO", need_target=False)
    pairs = list(pairs)
    rows = {
        k: _preference_row(policy, pairs[k], score, rpo, sampler, seed)
        for k in range(dist.rank, len(pairs), dist.world)
    }
    if dist.world == 1:
        _write_preferences(path, rows, pairs, rpo, sampler, seed)
        return path
    parts = [path.with_name(f".{path.name}.rank{r}-of-{dist.world}") for r in range(dist.world)]
    _save(parts[dist.rank], rows)
    dist.barrier()
    if dist.is_main:
        for part in parts[1:]:
            rows |= torch.load(part, map_location="cpu", weights_only=True)
        _write_preferences(path, rows, pairs, rpo, sampler, seed)
        for part in parts:
            part.unlink()
    dist.barrier()
    return path


def load_preferences(path: str | Path, pairs: Sequence[TrainPair], sampler: SamplerConfig) -> dict:
    """The preference file of ``pairs`` (memory-mapped); a ValueError if it was built for other pairs or
    another resolution."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"preference data {path} does not exist: run build_preferences first")
    data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    expected = [p.index for p in pairs]
    if data["pair_index"].tolist() != expected:
        raise ValueError(
            f"preference data {path} was built for another training list ({len(data['pair_index'])} pairs, "
            f"this one has {len(expected)}): delete it and run build_preferences again"
        )
    if data["settings"]["resolution"] != sampler.resolution:
        raise ValueError(
            f"preference data {path} holds {data['settings']['resolution']} px samples, the sampler is at "
            f"{sampler.resolution} px: delete it and run build_preferences again"
        )
    return data


# ---------------------------------------------------------------------------------------------------
# Training


def pair_errors(
    policy: Policy,
    pair: TrainPair,
    winner: Tensor,
    loser: Tensor,
    sampler: SamplerConfig,
    generator: torch.Generator,
    similarity: bool,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """One preference pair's velocity errors (module docstring): ``(policy [2] with grad, reference [2],
    policy error on the target photo [1] with grad or None)``; row 0 is the winner ``[N, D]``, row 1 the
    loser."""
    cond = encode_condition(policy, pair.prompt, pair.reference, sampler.resolution)
    noise, sigma = draw_noise(policy, cond, sampler.shift, generator)  # shared by winner and loser
    x0 = torch.stack([winner, loser]).float().to(policy.device)  # (2, N, D)
    noise, sigma = noise.expand(2, -1, -1), sigma.expand(2)
    if similarity:
        sim_noise, sim_sigma = draw_noise(policy, cond, sampler.shift, generator)
        x0 = torch.cat([x0, target_latents(policy, pair, cond)])  # (3, N, D)
        noise, sigma = torch.cat([noise, sim_noise]), torch.cat([sigma, sim_sigma])
    x_sigma = add_noise(x0, noise, sigma)
    err = velocity_error(velocity(policy, cond, x_sigma, sigma, sampler.guidance), x0, noise)  # (2 or 3,)
    with torch.no_grad(), lora_disabled(policy.transformer):
        ref_pred = velocity(policy, cond, x_sigma[:2], sigma[:2], sampler.guidance)
    ref_err = velocity_error(ref_pred, x0[:2], noise[:2])  # (2,)
    return err[:2], ref_err, err[2:] if similarity else None


class RPOTrainer:
    """RPO on preference data from :func:`build_preferences` (module docstring); a
    :class:`~cgrpo_core.training.loop.Trainer`."""

    def __init__(
        self,
        policy: Policy,
        pairs: Sequence[TrainPair],
        preferences: str | Path,
        rpo: RPOConfig,
        sampler: SamplerConfig,
        seed: int,
        dist: Dist = SINGLE_PROCESS,
    ):
        check_pairs(pairs, rpo.batch_size, dist, "RPO", need_target=rpo.sim_weight > 0)
        self.policy, self.pairs, self.rpo, self.sampler = policy, list(pairs), rpo, sampler
        self.seed, self.dist = seed, dist
        self.preferences = load_preferences(preferences, self.pairs, sampler)
        self.total_steps = rpo_steps(len(self.pairs), rpo)
        self.optimizer, self.scheduler = adamw(
            policy.trainable_parameters(), rpo.learning_rate, rpo.weight_decay
        )

    def position(self, steps_done: int) -> int:
        return steps_done * self.rpo.batch_size

    def _pair_loss(self, step: int, place: int, row: int) -> tuple[RPOLoss, tuple[Tensor, ...]]:
        generator = torch.Generator().manual_seed(derive_seed(self.seed, "rpo", step, place))
        prefs, similarity = self.preferences, self.rpo.sim_weight > 0
        err, ref_err, sim_err = pair_errors(
            self.policy,
            self.pairs[row],
            prefs["winner"][row],
            prefs["loser"][row],
            self.sampler,
            generator,
            similarity,
        )
        out = rpo_loss(
            err[:1], ref_err[:1], err[1:], ref_err[1:], sim_err, self.rpo.beta, self.rpo.sim_weight
        )
        detached = (err.detach(), ref_err, sim_err.detach() if similarity else None)
        return out, detached

    def step(self, step: int) -> dict[str, float]:
        start = time.perf_counter()
        lr = self.scheduler.get_last_lr()[0]
        chosen = step_pairs(len(self.pairs), self.rpo.batch_size, self.seed, step)
        places = shard(list(enumerate(chosen)), self.dist.rank, self.dist.world)
        self.optimizer.zero_grad(set_to_none=True)
        errors = []
        for place, row in places:
            out, detached = self._pair_loss(step, place, row)
            (out.loss / len(places)).backward()
            errors.append(detached)
        err, ref = torch.stack([e[0] for e in errors]), torch.stack([e[1] for e in errors])  # (P, 2) each
        sim = torch.cat([e[2] for e in errors]) if errors[0][2] is not None else None  # (P,)
        total = rpo_loss(err[:, 0], ref[:, 0], err[:, 1], ref[:, 1], sim, self.rpo.beta, self.rpo.sim_weight)
        if not torch.isfinite(total.loss):
            raise FloatingPointError(f"the RPO loss is not finite ({float(total.loss)})")
        params = self.policy.trainable_parameters()
        grad_norm = apply_update(self.optimizer, self.scheduler, params, self.rpo.max_grad_norm, self.dist)
        mean = self.dist.mean
        return {
            "loss": mean(float(total.loss)),
            "preference_loss": mean(float(total.preference_loss)),
            "similarity_loss": mean(float(total.similarity_loss)),
            "margin": mean(float(total.margin)),
            "accuracy": mean(float(total.accuracy)),
            "lr": lr,
            "grad_norm": grad_norm,
            "seconds/step": mean(time.perf_counter() - start),
        }
