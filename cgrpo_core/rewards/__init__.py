"""Rewards and metrics behind one interface: ``reward(RewardBatch) -> Tensor [N]``, selected by name.

    from cgrpo_core.rewards import RewardBatch, RewardSet, paper_reward_models
    rewards = RewardSet(paper_reward_models(), device="cuda")
    scores = rewards.score(["dino_seg", "hpsv3"], RewardBatch(images, references=refs, prompts=prompts,
                                                              subjects=classes))

Names (``REWARDS``): dino, dino_seg, clip_i, clip_t, hpsv3, aesthetic, vlm_judge_id, vlm_judge_prompt.
See config.py for the presets (paper rewards, released-code reward, DreamBench metrics).
"""

from cgrpo_core.rewards.base import MissingCheckpointError, Reward, RewardBatch
from cgrpo_core.rewards.config import (
    RewardModels,
    RewardName,
    RewardsConfig,
    ScoringConfig,
    dreambench_metric_models,
    paper_reward_models,
    released_reward_models,
)
from cgrpo_core.rewards.folder import score_folder
from cgrpo_core.rewards.registry import REWARDS, RewardSet, load_reward

__all__ = [
    "REWARDS",
    "MissingCheckpointError",
    "Reward",
    "RewardBatch",
    "RewardModels",
    "RewardName",
    "RewardSet",
    "RewardsConfig",
    "ScoringConfig",
    "dreambench_metric_models",
    "load_reward",
    "paper_reward_models",
    "released_reward_models",
    "score_folder",
]
