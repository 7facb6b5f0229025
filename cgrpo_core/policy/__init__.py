"""The policy: UNO (FLUX.1-dev with the reference image in context, UnoPE) plus a trainable LoRA.

Typical use (the GRPO trainer)::

    policy = load_policy(PolicyConfig(...))
    cond = encode_condition(policy, prompt, reference, settings.resolution)    # once per group
    group = rollout(policy, cond, group_size, settings, generator)             # no grad
    lat, nxt = group.transitions(samples, steps)                               # (M, N, D) each
    new_lp = log_prob(policy, group.cond, lat, nxt, steps, settings)           # (M,), grad through LoRA
    ratio = (new_lp - group.log_probs[samples, steps]).exp()

See docs/policy.md for the design, the UnoPE choice and the paper-scale memory budget.
"""

from cgrpo_core.policy.conditioning import Condition, encode_condition, encode_prompt, encode_references
from cgrpo_core.policy.config import PolicyConfig, TinyPolicyConfig
from cgrpo_core.policy.images import decode_latents, reference_tensor, save_png, to_pil, to_uint8
from cgrpo_core.policy.loading import (
    MissingModelError,
    Policy,
    build_tiny_checkpoint,
    check_model_folder,
    default_corpus,
    load_policy,
)
from cgrpo_core.policy.lora import convert_uno_lora, fuse_uno_lora, load_lora, save_lora
from cgrpo_core.policy.sampling import Rollout, log_prob, rollout, sample, sample_train_steps, velocity

__all__ = [
    "Condition",
    "MissingModelError",
    "Policy",
    "PolicyConfig",
    "Rollout",
    "TinyPolicyConfig",
    "build_tiny_checkpoint",
    "check_model_folder",
    "convert_uno_lora",
    "decode_latents",
    "default_corpus",
    "encode_condition",
    "encode_prompt",
    "encode_references",
    "fuse_uno_lora",
    "load_lora",
    "load_policy",
    "log_prob",
    "reference_tensor",
    "rollout",
    "sample",
    "sample_train_steps",
    "save_lora",
    "save_png",
    "to_pil",
    "to_uint8",
    "velocity",
]
