"""Which transitions of a rollout a GRPO update trains, as a config section says.

The paper trains every one of the T sampling steps (appendix A, "T = 25"). The released trainer leaves out
the transition into the final sample and trains a random ``int(24 * timestep_fraction) = 14`` of the other
24 (``timestep_fraction: 0.6``); the ``released_code`` preset reproduces that through
``grpo.skip_last_step`` and ``grpo.timestep_fraction``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cgrpo_core.policy.config import SamplerConfig
from cgrpo_core.policy.sampling import sample_train_steps
from cgrpo_core.training.config import GRPOConfig

__all__ = ["train_steps"]


def train_steps(grpo: GRPOConfig, sampler: SamplerConfig, generator: torch.Generator) -> Tensor:
    """The step indices one update trains (a random subset drawn from ``generator``), ``[K]``."""
    return sample_train_steps(sampler.num_steps, grpo.timestep_fraction, grpo.skip_last_step, generator)
