"""The toy model zoo: tiny models of the real classes, trained in-project on the toy world.

Generator side (this package's policy modules): the toy VAE (``AutoencoderKL``) and the toy UNO-style base
policy (the policy module's tiny FLUX with CLIP/T5 text encoders), saved in the FLUX.1-dev folder layout
and read by :func:`cgrpo_core.policy.load_policy`::

    cfg = zoo_policy_config("toy")
    folder = build_base_checkpoint(world_dir, folder, cfg)      # tokenizers on the toy captions, random init
    vae_curve = train_toy_vae(world_dir, folder, cfg)           # -> folder/vae
    policy_curve = train_toy_base_policy(world_dir, folder, cfg)  # -> folder/transformer
    report = policy_checks(policy, toybench_items(world_dir), identity_reward, prompt_reward, settings)

See docs/zoo.md for the design, the measured behaviour and the time budget.
"""

from cgrpo_core.zoo.base_policy import build_base_checkpoint, train_toy_base_policy
from cgrpo_core.zoo.common import Curve
from cgrpo_core.zoo.policy_config import ZooPolicyConfig, zoo_policy_config
from cgrpo_core.zoo.vae import train_toy_vae

__all__ = [
    "Curve",
    "ZooPolicyConfig",
    "build_base_checkpoint",
    "train_toy_base_policy",
    "train_toy_vae",
    "zoo_policy_config",
]
