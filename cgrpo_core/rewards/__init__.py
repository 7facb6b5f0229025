"""Rewards and metrics behind one interface: ``reward(RewardBatch) -> Tensor [N]``, selected by name.

    from cgrpo_core.rewards import RewardBatch, RewardSet, paper_reward_models
    rewards = RewardSet(paper_reward_models(), device="cuda")
    scores = rewards.score(["dino_seg", "hpsv3"], RewardBatch(images, references=refs, prompts=prompts,
                                                              subjects=classes))

Names (``REWARDS``): dino, dino_seg, clip_i, clip_t, hpsv3, aesthetic, vlm_judge_id, vlm_judge_prompt.
See config.py for the presets (paper rewards, released-code reward, DreamBench metrics).
"""

from cgrpo_core.lazy import lazy_exports

# Each submodule and the names it exports, imported at first use (cgrpo_core/lazy.py).
_EXPORTS = {
    "base": ("MissingCheckpointError", "Reward", "RewardBatch"),
    "config": (
        "RewardModels",
        "RewardName",
        "RewardsConfig",
        "ScoringConfig",
        "dreambench_metric_models",
        "paper_reward_models",
        "released_reward_models",
    ),
    "folder": ("score_folder",),
    "registry": ("REWARDS", "RewardSet", "load_reward"),
}
__all__ = sorted(name for names in _EXPORTS.values() for name in names)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
