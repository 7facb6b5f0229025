"""Check the toy base policy with the toy zoo's own rewards: does it do subject-driven generation, above
chance and well below the maximum?

:func:`check_base_policy` is :func:`cgrpo_core.toy.zoo.policy.checks.policy_checks` with the paper's rewards
as the reward zoo provides them: DINO-Seg for identity (own reference vs other subjects' references) and, for
the prompt (true vs shuffled prompts), the toy HPSv3 (the training reward) and CLIP-T (the evaluation
metric), each reported as ``prompt_*/<reward>``; plus a sample grid. It reads both halves of the zoo.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from cgrpo_core.evaluation.generation import generate_samples
from cgrpo_core.evaluation.grid import grid_items, sample_grid
from cgrpo_core.policy import SamplerConfig, load_policy
from cgrpo_core.rewards.base import RewardBatch
from cgrpo_core.rewards.registry import RewardSet
from cgrpo_core.toy.config import BaseCheckConfig
from cgrpo_core.toy.zoo.policy.build import base_policy_config
from cgrpo_core.toy.zoo.policy.checks import policy_checks, toybench_items
from cgrpo_core.toy.zoo.policy.data import world_resolution
from cgrpo_core.toy.zoo.rewards.build import zoo_reward_models

__all__ = ["check_base_policy"]


def _identity(rewards: RewardSet, name: str):
    def reward(images: Sequence[Image.Image], references: Sequence[Image.Image]) -> torch.Tensor:
        return rewards.get(name)(RewardBatch(list(images), references=[[r] for r in references]))

    return reward


def _prompt(rewards: RewardSet, name: str):
    def reward(images: Sequence[Image.Image], prompts: Sequence[str]) -> torch.Tensor:
        return rewards.get(name)(RewardBatch(list(images), prompts=list(prompts)))

    return reward


def check_base_policy(
    policy_folder: str | Path,
    reward_zoo_folder: str | Path,
    world_dir: str | Path,
    cfg: BaseCheckConfig,
    sampler: SamplerConfig,
    progress: bool = False,
) -> tuple[dict[str, float], Image.Image]:
    """The base policy's above-chance report on ToyBench (policy/checks.py) under the zoo's rewards, and a
    grid of ``cfg.grid_rows`` items (reference | prompt | ``cfg.samples_per_item`` samples), sampled by ODE
    with ``sampler``."""
    resolution = world_resolution(world_dir)
    if sampler.resolution != resolution:
        raise ValueError(
            f"sampler.resolution is {sampler.resolution} but the toy world's images are {resolution} px: "
            f"set sampler.resolution = {resolution}"
        )
    policy = load_policy(base_policy_config(policy_folder))
    rewards = RewardSet(zoo_reward_models(reward_zoo_folder))
    items = toybench_items(world_dir, cfg.prompts_per_subject)
    samples = generate_samples(policy, items, sampler, cfg.samples_per_item, cfg.seed, progress=progress)
    report: dict[str, float] = {}
    for name in cfg.prompt_rewards:
        checked = policy_checks(
            policy,
            items,
            _identity(rewards, cfg.identity_reward),
            _prompt(rewards, name),
            sampler,
            world_dir,
            cfg.samples_per_item,
            cfg.seed,
            samples=samples,
        )
        for key, value in checked.items():
            # prompt_margin -> prompt_margin/hpsv3, copy/prompt_true -> copy/prompt_true/clip_t, ...
            report[f"{key}/{name}" if "prompt" in key else key] = value
    grid = sample_grid(policy, grid_items(items, cfg.grid_rows), sampler, cfg.seed, cfg.samples_per_item)
    return report, grid
