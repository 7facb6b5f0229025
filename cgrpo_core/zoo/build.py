"""Build the toy zoo's generator side in one call, and check the base policy with the zoo's own rewards.

    curves = train_policy_zoo(world_dir, out_dir, cfg.policy)        # VAE, then base policy; manifest
    report, grid = check_base_policy(out_dir, reward_zoo_dir, world_dir, cfg.check)

``out_dir`` is a FLUX.1-dev-layout checkpoint (``transformer/``, ``vae/``, ``text_encoder*/``,
``tokenizer*/``, ``scheduler/``) plus ``policy_zoo.json`` (content key, curves, wall times), loaded by
:func:`cgrpo_core.policy.load_policy` through :func:`base_policy_config`. The reward side is
:func:`cgrpo_core.zoo.rewards_zoo.train_reward_zoo`; both are keyed by content (config + toy world + code
version), which the ``toy-zoo`` flow uses to build each once.

The check (:func:`check_base_policy`) is :func:`cgrpo_core.zoo.policy_checks.policy_checks` with the
paper's rewards as the reward zoo provides them: DINO-Seg for identity (own reference vs other subjects'
references) and, for the prompt (true vs shuffled prompts), the toy HPSv3 (the training reward) and CLIP-T
(the evaluation metric), each reported as ``prompt_*/<reward>``; plus the sample grid.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from cgrpo_core.config import config_hash
from cgrpo_core.policy import PolicyConfig, load_policy
from cgrpo_core.rewards.base import RewardBatch
from cgrpo_core.rewards.registry import RewardSet
from cgrpo_core.store import atomic_write_json, file_hash
from cgrpo_core.zoo.base_policy import build_base_checkpoint, train_toy_base_policy
from cgrpo_core.zoo.common import Curve
from cgrpo_core.zoo.config import BaseCheckConfig
from cgrpo_core.zoo.grid import grid_items, sample_grid
from cgrpo_core.zoo.pairs import world_resolution
from cgrpo_core.zoo.policy_checks import generate_samples, policy_checks, toybench_items
from cgrpo_core.zoo.policy_config import ZooPolicyConfig
from cgrpo_core.zoo.rewards_zoo import zoo_reward_models
from cgrpo_core.zoo.vae import train_toy_vae

__all__ = [
    "POLICY_MANIFEST",
    "ZOO_POLICY_VERSION",
    "base_policy_config",
    "check_base_policy",
    "policy_zoo_key",
    "read_manifest",
    "train_policy_zoo",
]

ZOO_POLICY_VERSION = "zoo-policy-v1"  # bump when code that changes the trained VAE or base policy changes
POLICY_MANIFEST = "policy_zoo.json"


def policy_zoo_key(world_dir: str | Path, cfg: ZooPolicyConfig) -> str:
    """Content key of a policy zoo: its config, the toy world (world.json fixes it) and the code version."""
    world = file_hash(Path(world_dir) / "world.json")
    return config_hash(cfg, {"world": world, "code": ZOO_POLICY_VERSION})


def read_manifest(folder: str | Path, name: str) -> dict:
    """A zoo folder's manifest (``policy_zoo.json`` or ``reward_zoo.json``); a clear error if absent."""
    path = Path(folder) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {folder} is not a built zoo folder (build it first)")
    return json.loads(path.read_text(encoding="utf-8"))


def train_policy_zoo(
    world_dir: str | Path, out_dir: str | Path, cfg: ZooPolicyConfig, progress: bool = True, threads: int = 2
) -> dict[str, Curve]:
    """Build the tiny checkpoint in ``out_dir``, train its VAE, then its transformer, on the toy SynCD.

    Returns ``{"vae": curve, "base_policy": curve}`` and writes them, the content key and the wall time of
    each stage into ``out_dir/policy_zoo.json`` (written last: a folder without it is not a zoo).
    """
    out = Path(out_dir)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    seconds: dict[str, float] = {}
    try:
        start = time.perf_counter()
        build_base_checkpoint(world_dir, out, cfg)
        seconds["seconds_build"] = time.perf_counter() - start
        curves = {}
        for name, train in (("vae", train_toy_vae), ("base_policy", train_toy_base_policy)):
            start = time.perf_counter()
            curves[name] = train(world_dir, out, cfg, progress)
            seconds[f"seconds_{name}"] = time.perf_counter() - start
    finally:
        torch.set_num_threads(previous)
    manifest = {"key": policy_zoo_key(world_dir, cfg), "curves": curves, "seconds": seconds}
    atomic_write_json(out / POLICY_MANIFEST, manifest)
    return curves


def base_policy_config(folder: str | Path, lora_rank: int = 0) -> PolicyConfig:
    """The :class:`PolicyConfig` that loads a policy zoo's base model (float32, no UNO LoRA: it is trained
    whole), with a fresh LoRA of ``lora_rank`` (0: none) for the trainers."""
    return PolicyConfig(
        model_folder=str(Path(folder).resolve()), uno_lora=None, dtype="float32", lora_rank=lora_rank
    )


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
    progress: bool = False,
) -> tuple[dict[str, float], Image.Image]:
    """The base policy's above-chance report on ToyBench (policy_checks.py) under the zoo's rewards, and a
    grid of ``cfg.grid_rows`` items (reference | prompt | ``cfg.samples_per_item`` samples)."""
    resolution = world_resolution(world_dir)
    if cfg.sampler.resolution != resolution:
        raise ValueError(
            f"check.sampler.resolution is {cfg.sampler.resolution} but the toy world's images are "
            f"{resolution} px: set check.sampler.resolution = {resolution}"
        )
    policy = load_policy(base_policy_config(policy_folder))
    rewards = RewardSet(zoo_reward_models(reward_zoo_folder))
    items = toybench_items(world_dir, cfg.prompts_per_subject)
    samples = generate_samples(policy, items, cfg.sampler, cfg.samples_per_item, cfg.seed, progress=progress)
    report: dict[str, float] = {}
    for name in cfg.prompt_rewards:
        checked = policy_checks(
            policy,
            items,
            _identity(rewards, cfg.identity_reward),
            _prompt(rewards, name),
            cfg.sampler,
            world_dir,
            cfg.samples_per_item,
            cfg.seed,
            samples=samples,
        )
        for key, value in checked.items():
            # prompt_margin -> prompt_margin/hpsv3, copy/prompt_true -> copy/prompt_true/clip_t, ...
            report[f"{key}/{name}" if "prompt" in key else key] = value
    grid = sample_grid(policy, grid_items(items, cfg.grid_rows), cfg.sampler, cfg.seed, cfg.samples_per_item)
    return report, grid
