"""The toy profile's own section of the experiment config: the toy world and the zoo trained on it.

``ToyConfig`` is ``ExperimentConfig.toy``; it is read only when the experiment's ``weights`` is ``toy_zoo``
(the toy and test profiles). Its sizes per profile are dotted overrides in the one profile table
(:data:`cgrpo_core.config.PROFILES`).

- ``world``: the generated toy SynCD + ToyBench (:class:`~cgrpo_core.toy.world.config.ToyWorldConfig`);
- ``zoo.policy``: the toy VAE and UNO-style base policy (:class:`~cgrpo_core.toy.zoo.policy.config.
  ZooPolicyConfig`);
- ``zoo.rewards``: every toy reward model (:class:`~cgrpo_core.toy.zoo.rewards.config.ZooRewardsConfig`);
- ``zoo.check``: the check that the base policy does subject-driven generation imperfectly, scored by the
  paper's two training rewards as the zoo provides them (identity: DINO-Seg; prompt: the toy HPSv3, with
  CLIP-T beside it), sampled with the experiment's sampler.
"""

from __future__ import annotations

from pydantic import Field

from cgrpo_core.rewards.config import RewardName
from cgrpo_core.schema import Frozen
from cgrpo_core.toy.world.config import ToyWorldConfig
from cgrpo_core.toy.zoo.policy.config import ZooPolicyConfig
from cgrpo_core.toy.zoo.rewards.config import ZooRewardsConfig

__all__ = ["BaseCheckConfig", "ToyConfig", "ZooConfig"]


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
    seed: int = Field(0, description="Seed of the samples and of the shuffled prompts / other references.")


class ZooConfig(Frozen):
    """Every model of the toy zoo and the base policy's check."""

    policy: ZooPolicyConfig = ZooPolicyConfig()
    rewards: ZooRewardsConfig = ZooRewardsConfig()
    check: BaseCheckConfig = BaseCheckConfig()


class ToyConfig(Frozen):
    """The toy world and the zoo of tiny models trained on it."""

    world: ToyWorldConfig = Field(ToyWorldConfig(), description="The generated toy SynCD + ToyBench.")
    zoo: ZooConfig = Field(ZooConfig(), description="The tiny models trained on the toy world.")
