"""Rewards and metrics behind one interface: ``reward(RewardBatch) -> Tensor [N]``, selected by name.

    from cgrpo_core.rewards import RewardBatch, RewardSet, paper_reward_models
    rewards = RewardSet(paper_reward_models(), device="cuda")
    scores = rewards.score(["dino_seg", "hpsv3"], RewardBatch(images, references=refs, prompts=prompts,
                                                              subjects=classes))

Names (``REWARDS``): dino, dino_seg, clip_i, clip_t, hpsv3, aesthetic, vlm_judge_id, vlm_judge_prompt.
See config.py for the presets (paper rewards, released-code reward, DreamBench metrics).
"""

from cgrpo_core.lazy import lazy_exports

# Each exported name and the module that defines it, imported at first use (cgrpo_core/lazy.py).
_EXPORTS = {
    "MissingCheckpointError": "base",
    "Reward": "base",
    "RewardBatch": "base",
    "RewardModels": "config",
    "RewardName": "config",
    "RewardsConfig": "config",
    "ScoringConfig": "config",
    "dreambench_metric_models": "config",
    "paper_reward_models": "config",
    "released_reward_models": "config",
    "score_folder": "folder",
    "REWARDS": "registry",
    "RewardSet": "registry",
    "load_reward": "registry",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
