"""The policy: UNO (FLUX.1-dev with the reference image in context, UnoPE) plus a trainable LoRA.

The code path both profiles share (the toy profile's tiny checkpoints live in :mod:`cgrpo_core.toy.tiny`):

- ``config.py``        PolicyConfig (weights, dtype, LoRA, UnoPE) and SamplerConfig (steps, shift, eta, ...)
- ``loading.py``       the FLUX.1-dev-layout loader, its folder check and download hints
- ``lora.py``          the trainable LoRA (fp32 master weights), its diffusers-format files, UNO's LoRA
- ``latents.py``       2x2 packing of latents into tokens and their rotary ids
- ``images.py``        references in, images out
- ``conditioning.py``  prompt + reference -> Condition (UNO in-context reference tokens)
- ``sampling.py``      ODE sampling, SDE rollouts with log-probs, log-prob recomputation

Typical use (the GRPO trainer)::

    policy = load_policy(PolicyConfig(...))
    cond = encode_condition(policy, prompt, reference, settings.resolution)    # once per group
    group = rollout(policy, cond, group_size, settings, generator)             # no grad
    new_lp = log_prob(policy, group, samples, steps)                           # (M,), grad through LoRA
    ratio = (new_lp - group.log_probs[samples, steps]).exp()

See docs/policy.md for the design, the UnoPE choice and the paper-scale memory budget.
"""

from cgrpo_core.lazy import lazy_exports

# Each exported name and the module that defines it, imported at first use (cgrpo_core/lazy.py).
_EXPORTS = {
    "Condition": "conditioning",
    "encode_condition": "conditioning",
    "encode_prompt": "conditioning",
    "encode_references": "conditioning",
    "PolicyConfig": "config",
    "SamplerConfig": "config",
    "decode_latents": "images",
    "reference_tensor": "images",
    "save_png": "images",
    "to_pil": "images",
    "to_uint8": "images",
    "MissingModelError": "loading",
    "Policy": "loading",
    "check_model_folder": "loading",
    "load_policy": "loading",
    "convert_uno_lora": "lora",
    "fuse_uno_lora": "lora",
    "load_lora": "lora",
    "save_lora": "lora",
    "Rollout": "sampling",
    "log_prob": "sampling",
    "rollout": "sampling",
    "sample": "sampling",
    "sample_train_steps": "sampling",
    "step_distribution": "sampling",
    "velocity": "sampling",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
