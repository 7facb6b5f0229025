"""Resolve an experiment's ``weights = "toy_zoo"`` into sections that read a built toy zoo.

The toy and test profiles name no weights: the flows build the toy zoo first, then
:func:`with_toy_weights` points the policy, the training rewards, the SynCD scorers and the evaluation
metrics at it. Every model id it writes carries the zoo's content key (``toy-zoo/<key>/<model>``), so a
result built on a zoo is keyed by the zoo that trained it.
"""

from __future__ import annotations

from pathlib import Path

from cgrpo_core.config import ExperimentConfig
from cgrpo_core.data.scorers import MODEL_SCORERS, with_zoo_models
from cgrpo_core.toy.zoo.policy.build import base_policy_config
from cgrpo_core.toy.zoo.rewards.build import zoo_reward_models

__all__ = ["scores_with_zoo", "with_toy_weights"]


def with_toy_weights(
    cfg: ExperimentConfig, policy_zoo: str | Path, reward_zoo: str | Path
) -> ExperimentConfig:
    """``cfg`` reading the policy zoo in ``policy_zoo`` and the reward zoo in ``reward_zoo``; ``weights``
    becomes ``configured``. The policy section keeps its dtype and LoRA; the rewards keep their roles."""
    if cfg.weights != "toy_zoo":
        raise ValueError(f"with_toy_weights resolves weights = toy_zoo; this config has {cfg.weights!r}")
    models = zoo_reward_models(reward_zoo)
    return cfg.model_copy(
        update={
            "weights": "configured",
            "policy": base_policy_config(policy_zoo, cfg.policy),
            "rewards": cfg.rewards.model_copy(update={"models": models}),
            "data": cfg.data.model_copy(update={"score": with_zoo_models(cfg.data.score, models)}),
            "evaluation": cfg.evaluation.model_copy(update={"metrics": models}),
        }
    )


def scores_with_zoo(cfg: ExperimentConfig) -> bool:
    """Does preparing SynCD need the toy reward zoo (toy weights and a scorer that reads model weights)?"""
    scorers = (cfg.data.score.identity_scorer, cfg.data.score.aesthetic_scorer)
    return cfg.weights == "toy_zoo" and any(name in MODEL_SCORERS for name in scorers)
