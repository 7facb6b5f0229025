"""The whole toy zoo in one config: generator side, reward side, and the base policy's check.

``ZooConfig`` is what the ``toy-zoo`` flow builds (flows/zoo.py): the toy VAE and base policy
(:class:`~cgrpo_core.zoo.policy_config.ZooPolicyConfig`), every toy reward model
(:class:`~cgrpo_core.zoo.reward_config.ZooRewardsConfig`) and the check that the base policy does
subject-driven generation imperfectly, scored by the paper's two training rewards as the zoo provides them
(identity: DINO-Seg; prompt: the toy HPSv3). Presets: ``toy`` (the default toy world, the 15-minute
budget of benchmarks/bench_zoo.py) and ``test`` (the tests' small world, seconds).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from cgrpo_core.config import PROFILE_OVERRIDES, Frozen, SamplerConfig, override
from cgrpo_core.rewards.config import RewardName
from cgrpo_core.zoo.policy_config import ZooPolicyConfig, zoo_policy_config
from cgrpo_core.zoo.reward_config import ZooRewardsConfig, zoo_rewards_config

__all__ = ["ZOO_PRESETS", "BaseCheckConfig", "ZooConfig", "ZooPreset", "zoo_config"]

ZooPreset = Literal["toy", "test"]


def _toy_sampler(profile: str) -> SamplerConfig:
    """The ODE sampler of ``profile`` (steps and resolution of the experiments that use the zoo)."""
    sizes = {k.removeprefix("sampler."): v for k, v in PROFILE_OVERRIDES[profile].items() if "sampler." in k}
    return SamplerConfig(**sizes)


class BaseCheckConfig(Frozen):
    """Does the base policy do subject-driven generation, above chance but well below the maximum?"""

    identity_reward: RewardName = Field(
        "dino_seg", description="Identity reward of the check (the paper's training reward: DINO-Seg)."
    )
    prompt_rewards: tuple[RewardName, ...] = Field(
        ("hpsv3", "clip_t"),
        min_length=1,
        description="Prompt rewards of the check, each reported as prompt_*/<name>: the paper's training "
        "reward (HPSv3; here the toy one) and the evaluation's CLIP-T.",
    )
    prompts_per_subject: int | None = Field(
        5, ge=2, le=25, description="Evenly spaced ToyBench prompts per subject (None: all 25)."
    )
    samples_per_item: int = Field(4, ge=1, description="Samples per (subject, prompt) (DreamBench: 4).")
    grid_rows: int = Field(8, ge=1, description="Rows (subjects) of the sample grid.")
    sampler: SamplerConfig = Field(
        _toy_sampler("toy"), description="ODE sampler of the check; its resolution is the toy world's."
    )
    seed: int = Field(0, description="Seed of the samples and of the shuffled prompts / other references.")


class ZooConfig(Frozen):
    """Every model of the toy zoo and the base policy's check."""

    policy: ZooPolicyConfig = ZooPolicyConfig()
    rewards: ZooRewardsConfig = ZooRewardsConfig()
    check: BaseCheckConfig = BaseCheckConfig()


# Preset -> the sub-presets and dotted-path changes of the check.
ZOO_PRESETS: dict[str, dict[str, Any]] = {
    "toy": {},
    "test": {
        "check.prompts_per_subject": 2,
        "check.samples_per_item": 2,
        "check.grid_rows": 4,
        "check.sampler": _toy_sampler("test").model_dump(),
    },
}


def zoo_config(preset: ZooPreset = "toy") -> ZooConfig:
    """The zoo at the sizes of ``preset``: toy (the toy profile's zoo) or test (seconds, small world)."""
    if preset not in ZOO_PRESETS:
        raise ValueError(
            f"unknown zoo preset {preset!r}; choose one of {sorted(ZOO_PRESETS)} "
            "(the paper profile uses the released weights, not a zoo)"
        )
    cfg = ZooConfig(policy=zoo_policy_config(preset), rewards=zoo_rewards_config(preset))
    return override(cfg, ZOO_PRESETS[preset])
