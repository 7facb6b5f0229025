"""Rewards by name, and :class:`RewardSet`, which loads each model once and keeps it.

``REWARDS`` maps every name of :data:`~cgrpo_core.rewards.config.RewardName` to its loader
``(models: RewardModels, device, cache) -> Reward``. A trainer builds one :class:`RewardSet` and scores
each group of images through it; backbones shared by several rewards (the CLIP of CLIP-I and CLIP-T)
are loaded once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from cgrpo_core.rewards.aesthetic import load_aesthetic
from cgrpo_core.rewards.base import Reward, RewardBatch
from cgrpo_core.rewards.clip import load_clip_i, load_clip_t
from cgrpo_core.rewards.config import RewardModels
from cgrpo_core.rewards.dino import load_dino, load_dino_seg
from cgrpo_core.rewards.hpsv3 import load_hpsv3
from cgrpo_core.rewards.vlm_judge import load_identity_judge, load_prompt_judge

__all__ = ["REWARDS", "RewardSet", "load_reward"]

REWARDS: dict[str, Callable[..., Reward]] = {
    "dino": load_dino,
    "dino_seg": load_dino_seg,
    "clip_i": load_clip_i,
    "clip_t": load_clip_t,
    "hpsv3": load_hpsv3,
    "aesthetic": load_aesthetic,
    "vlm_judge_id": load_identity_judge,
    "vlm_judge_prompt": load_prompt_judge,
}


def load_reward(name: str, models: RewardModels, device: str = "cpu", cache: dict | None = None) -> Reward:
    """The reward called ``name``, configured by ``models``."""
    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; choose one of {sorted(REWARDS)}")
    return REWARDS[name](models, device, cache)


class RewardSet:
    """Loaded rewards (lazily, once each) sharing one model cache."""

    def __init__(self, models: RewardModels, device: str = "cpu"):
        self.models, self.device = models, device
        self._cache: dict = {}
        self._rewards: dict[str, Reward] = {}

    def get(self, name: str) -> Reward:
        if name not in self._rewards:
            self._rewards[name] = load_reward(name, self.models, self.device, self._cache)
        return self._rewards[name]

    def needs(self, names: Iterable[str]) -> frozenset[str]:
        """Every input the named rewards need beside the images."""
        return frozenset().union(*(self.get(n).needs for n in names))

    def score(self, names: Iterable[str], batch: RewardBatch) -> dict[str, torch.Tensor]:
        """``{name: scores [N]}`` for each named reward on one batch."""
        return {name: self.get(name)(batch) for name in names}
