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

# Each submodule and the names it exports, imported at first use (cgrpo_core/lazy.py).
_EXPORTS = {
    "conditioning": ("Condition", "encode_condition", "encode_prompt", "encode_references"),
    "config": ("PolicyConfig", "SamplerConfig"),
    "images": ("decode_latents", "reference_tensor", "save_png", "to_pil", "to_uint8"),
    "loading": ("MissingModelError", "Policy", "check_model_folder", "load_policy"),
    "lora": ("convert_uno_lora", "fuse_uno_lora", "load_lora", "save_lora"),
    "sampling": (
        "Rollout",
        "log_prob",
        "rollout",
        "sample",
        "sample_train_steps",
        "step_distribution",
        "velocity",
    ),
}
__all__ = sorted(name for names in _EXPORTS.values() for name in names)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
