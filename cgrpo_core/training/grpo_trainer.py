"""The GRPO trainer: naive GRPO and Customized-GRPO are this one trainer with different advantage and
schedule settings (``grpo.advantage``, ``grpo.tdw``), so a comparison measures the method, not the code.

Step s (0-based) of a run with seed S:

1. takes the P pairs ``step_pairs(n, P, S, s)`` of the training list, P = ``grpo.prompts_per_step`` x
   the number of processes (appendix A: one pair per GPU; 8 GPUs); each process trains its own
   ``grpo.prompts_per_step`` of them;
2. encodes each pair's condition (prompt + reference) once;
3. rolls out a group of G = ``grpo.group_size`` per pair from a generator seeded by (S, s, the pair's
   place in the step), and draws the trained steps from one seeded by (S, s);
4. scores each group with the identity and the prompt reward (``score``: the experiment's
   ``rewards.id`` and ``rewards.prompt`` through ``RewardSet.score``), then runs
   :func:`~cgrpo_core.training.grpo.grpo_step` (advantages, TDW, inner epochs of clipped updates);
5. reports the step's metrics (gathered over the ranks): mean and std of each raw reward, of each
   advantage and of the combined one, the conflict shares (Fig. 7a), the ratio at the first update, clip
   fraction, approximate KL, loss, gradient norm, learning rate, seconds split into sampling / reward /
   update, and peak memory; with ``grpo.kl_coef`` > 0 also ``kl_to_base``, the KL term's value.

AdamW at ``grpo.learning_rate`` (constant: neither the paper nor the release decays it).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from cgrpo_core.advantages import conflict_stats
from cgrpo_core.policy.conditioning import encode_condition
from cgrpo_core.policy.config import SamplerConfig
from cgrpo_core.policy.images import to_pil
from cgrpo_core.policy.loading import Policy
from cgrpo_core.training.config import GRPOConfig
from cgrpo_core.training.data import TrainPair, derive_seed, shard, step_pairs
from cgrpo_core.training.distributed import SINGLE_PROCESS, Dist
from cgrpo_core.training.grpo import StepResult, grpo_step
from cgrpo_core.training.optim import adamw
from cgrpo_core.training.steps import train_steps

__all__ = ["GRPOTrainer", "PairScorer", "peak_memory_mb", "step_metrics"]

# (pair, its G images) -> (r_id [G], r_prompt [G])
PairScorer = Callable[[TrainPair, list[Image.Image]], tuple[Tensor, Tensor]]


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process so far: the accelerator's allocator on a GPU, else the resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _mean_std(name: str, values: Tensor) -> dict[str, float]:
    values = values.float().reshape(-1)
    return {
        f"{name}_mean": float(values.mean()),
        f"{name}_std": float(values.std()) if values.numel() > 1 else 0.0,
    }


def step_metrics(out: StepResult, reward_names: tuple[str, str], lr: float, dist: Dist) -> dict[str, float]:
    """The step metrics of one GRPO step (module docstring), gathered over the ranks."""
    id_name, prompt_name = reward_names
    r_id, r_prompt = dist.gather(out.r_id.float()), dist.gather(out.r_prompt.float())
    a_id, a_prompt = dist.gather(out.a_id.float()), dist.gather(out.a_prompt.float())
    combined = dist.gather(out.advantages[:, :, out.steps.to(out.advantages.device)].float())
    metrics = {
        **_mean_std(f"reward/{id_name}", r_id),
        **_mean_std(f"reward/{prompt_name}", r_prompt),
        **_mean_std("advantage/identity", a_id),
        **_mean_std("advantage/prompt", a_prompt),
        **_mean_std("advantage/combined", combined),
    }
    conflict = {f"conflict/{k}": v for k, v in conflict_stats(a_id, a_prompt).items()}  # all ranks
    updates = out.updates
    metrics |= conflict
    metrics |= {
        "ratio_first_update": dist.mean(updates[0].ratio),
        "ratio": dist.mean(float(np.mean([u.ratio for u in updates]))),
        "clip_fraction": dist.mean(float(np.mean([u.clip_fraction for u in updates]))),
        "approx_kl": dist.mean(float(np.mean([u.approx_kl for u in updates]))),
        "loss": dist.mean(float(np.mean([u.loss for u in updates]))),
        "grad_norm": float(np.mean([u.grad_norm for u in updates])),  # after the all-reduce: one value
        "lr": lr,
        **{f"seconds/{k}": dist.mean(v) for k, v in out.seconds.items()},
    }
    if updates[0].kl_to_base is not None:
        metrics["kl_to_base"] = dist.mean(float(np.mean([u.kl_to_base for u in updates])))
    return metrics


class GRPOTrainer:
    """Online GRPO on a training list (module docstring); a :class:`~cgrpo_core.training.loop.Trainer`."""

    def __init__(
        self,
        policy: Policy,
        pairs: Sequence[TrainPair],
        score: PairScorer,
        reward_names: tuple[str, str],
        grpo: GRPOConfig,
        sampler: SamplerConfig,
        seed: int,
        dist: Dist = SINGLE_PROCESS,
    ):
        if not pairs:
            raise ValueError("the training list is empty: run prepare-syncd (or loosen data.filter) first")
        self.policy, self.pairs, self.score, self.reward_names = policy, list(pairs), score, reward_names
        self.grpo, self.sampler, self.seed, self.dist = grpo, sampler, seed, dist
        self.total_steps = grpo.max_steps
        self.optimizer, self.scheduler = adamw(
            policy.trainable_parameters(), grpo.learning_rate, grpo.weight_decay
        )

    @property
    def pairs_per_step(self) -> int:
        """The step's pairs over all processes: ``grpo.prompts_per_step`` per process (appendix A)."""
        return self.grpo.prompts_per_step * self.dist.world

    def position(self, steps_done: int) -> int:
        return steps_done * self.pairs_per_step

    def step(self, step: int) -> dict[str, float]:
        start = time.perf_counter()
        chosen = step_pairs(len(self.pairs), self.pairs_per_step, self.seed, step)
        places = shard(list(enumerate(chosen)), self.dist.rank, self.dist.world)
        pairs = [self.pairs[index] for _, index in places]
        references = [Image.open(p.reference).convert("RGB") for p in pairs]
        conds = [
            encode_condition(self.policy, p.prompt, ref, self.sampler.resolution)
            for p, ref in zip(pairs, references, strict=True)
        ]
        generators = [
            torch.Generator().manual_seed(derive_seed(self.seed, "rollout", step, place))
            for place, _ in places
        ]
        steps = train_steps(
            self.grpo,
            self.sampler,
            torch.Generator().manual_seed(derive_seed(self.seed, "train_steps", step)),
        )

        def score(groups):
            scored = [self.score(p, to_pil(g.images.cpu())) for p, g in zip(pairs, groups, strict=True)]
            return torch.stack([s[0] for s in scored]), torch.stack([s[1] for s in scored])

        lr = self.scheduler.get_last_lr()[0]
        out = grpo_step(
            self.policy, conds, score, self.grpo, self.sampler, self.optimizer, generators, steps, self.dist
        )
        self.scheduler.step()
        metrics = step_metrics(out, self.reward_names, lr, self.dist)
        metrics["seconds/step"] = self.dist.mean(time.perf_counter() - start)
        metrics["memory/peak_mb"] = self.dist.mean(peak_memory_mb(self.policy.device))
        return metrics
