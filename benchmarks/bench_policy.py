"""Cost of one toy GRPO step of the policy on CPU, and the paper-scale GPU memory budget.

Run: .venv/bin/python benchmarks/bench_policy.py            (toy step; add --checkpointing to compare)
     .venv/bin/python benchmarks/bench_policy.py --paper-memory

1. Toy GRPO step (target: < 3 s on 2 CPU cores). The tiny checkpoint (default TinyPolicyConfig: the
   0.47 M-parameter transformer of ECOSYSTEM.md, 16 x 16 x 16 latents at 64 px) is built in the real
   layout and loaded by the real loader. One step = encode the condition once, a rollout of G = 12 SDE
   trajectories over the toy step count (10) with VAE decoding, then log_prob + backward over the trained
   steps (all 10: paper; --fraction 0.6: released code), one transformer batch of G per step as the
   released trainer loops, then one AdamW step. Rewards are not included (another area). Reports the
   median and minimum of --repeats steps and the process's peak RSS.

2. Paper-scale memory (--paper-memory): FLUX.1-dev's transformer and the rank-512 LoRA are built on the
   meta device (exact parameter counts, no memory used) and one forward pass at 512 px (1024 target +
   1024 reference + 512 text tokens, batch 1 as the released trainer) runs on meta tensors under
   ``saved_tensors_hooks``: the storages autograd saves for the backward are the activation memory.
   Attention is the flash kernel's (q, k, v, output and a [heads, N] fp32 log-sum-exp per block, which
   meta kernels omit and we add). The method is checked first on a small model: the meta count must
   equal the storages a real CPU forward saves, byte for byte. With gradient checkpointing (diffusers
   checkpoints every block) autograd keeps each block's [N, 3072] inputs plus, during the backward, one
   block's activations at a time (the largest block is counted).
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch
from diffusers.utils import logging as diffusers_logging
from PIL import Image
from torch import Tensor

from cgrpo_core.policy import (
    PolicyConfig,
    SamplerConfig,
    encode_condition,
    load_policy,
    log_prob,
    rollout,
    sample_train_steps,
)
from cgrpo_core.policy.lora import add_lora
from cgrpo_core.toy.tiny.policy import build_tiny_checkpoint

GiB = 2**30


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# ---------------------------------------------------------------------------------------------------
# 1. Toy GRPO step


def toy_step(
    policy, cond, settings: SamplerConfig, group: int, fraction: float, optimizer, seed: int
) -> dict:
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    out = rollout(policy, cond, group, settings, gen)
    rolled = time.perf_counter()
    steps = sample_train_steps(settings.num_steps, fraction, False, gen)
    samples = torch.arange(group)
    optimizer.zero_grad(set_to_none=True)
    for step in steps.tolist():  # one transformer batch of G per trained step, backward per step
        t = torch.full((group,), step)
        lp = log_prob(policy, out, samples, t)  # (G,)
        ratio = torch.exp(lp - out.log_probs[:, step])  # (G,) the GRPO ratio
        advantages = torch.randn(group, generator=gen)  # stands in for the reward model's advantages
        (-(ratio * advantages).mean() / len(steps)).backward()
    optimizer.step()
    end = time.perf_counter()
    return {"rollout_s": rolled - start, "train_s": end - rolled, "total_s": end - start}


def bench_toy(args) -> None:
    torch.set_num_threads(args.threads)
    settings = SamplerConfig(num_steps=args.steps, resolution=args.resolution)
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_tiny_checkpoint(Path(tmp) / "tiny")
        cfg = PolicyConfig(
            model_folder=str(folder),
            uno_lora=None,
            dtype="float32",
            lora_rank=args.rank,
            gradient_checkpointing=args.checkpointing,
        )
        policy = load_policy(cfg)
    baseline = peak_rss_mib()
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=1e-5, weight_decay=1e-4)
    reference = Image.new("RGB", (64, 64), (200, 120, 40))
    encode_condition(policy, "a dog in the snow", reference, args.resolution)  # warm-up
    start = time.perf_counter()
    cond = encode_condition(policy, "a dog in the snow", reference, args.resolution)
    encode_s = time.perf_counter() - start
    toy_step(policy, cond, settings, args.group, args.fraction, optimizer, seed=0)  # warm-up
    runs = [
        toy_step(policy, cond, settings, args.group, args.fraction, optimizer, seed=i + 1)
        for i in range(args.repeats)
    ]
    n_base = sum(p.numel() for p in policy.transformer.parameters() if not p.requires_grad)
    n_lora = sum(p.numel() for p in policy.trainable_parameters())
    trained = max(1, int(args.steps * args.fraction))
    print(
        f"threads={torch.get_num_threads()} transformer {n_base / 1e6:.3f} M, LoRA rank {args.rank}: {n_lora}"
    )
    print(
        f"G={args.group} T={args.steps} {args.resolution}px trained steps={trained} ckpt={args.checkpointing}"
    )
    print(f"encode condition (once per group): {encode_s * 1000:.1f} ms")
    for key in ("rollout_s", "train_s", "total_s"):
        values = [r[key] for r in runs]
        print(f"{key:10s} median {statistics.median(values):.3f} s  min {min(values):.3f} s")
    print(f"peak RSS {peak_rss_mib():.0f} MiB (after loading: {baseline:.0f} MiB)")


# ---------------------------------------------------------------------------------------------------
# 2. Paper-scale memory

FLUX_DEV = dict(
    in_channels=64,
    num_layers=19,
    num_single_layers=38,
    attention_head_dim=128,
    num_attention_heads=24,
    joint_attention_dim=4096,
    pooled_projection_dim=768,
    guidance_embeds=True,
    axes_dims_rope=(16, 56, 56),
)  # fmt: skip  (FLUX.1-dev transformer/config.json)


class SavedBytes:
    """Bytes of the storages autograd saves for backward (each storage once; views share one)."""

    def __init__(self):
        self.seen: set[int] = set()
        self.keep: list[Tensor] = []  # keep saved tensors alive so storage ids are not reused
        self.total = 0

    def pack(self, t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        if storage._cdata not in self.seen and not t.requires_grad:  # LoRA weights are not activations
            self.seen.add(storage._cdata)
            self.keep.append(t)
            self.total += storage.nbytes()
        return t


def saved_activation_bytes(model, inputs: dict) -> tuple[SavedBytes, list[int]]:
    """Run ``model(**inputs)`` with grad; returns the saved-bytes count and the bytes saved per block."""
    counter, per_block, marks = SavedBytes(), [], []
    blocks = [*model.transformer_blocks, *model.single_transformer_blocks]
    hooks = [b.register_forward_pre_hook(lambda *_: marks.append(counter.total)) for b in blocks]
    hooks += [b.register_forward_hook(lambda *_: per_block.append(counter.total - marks[-1])) for b in blocks]
    with torch.autograd.graph.saved_tensors_hooks(counter.pack, lambda t: t):
        model(**inputs)
    for hook in hooks:
        hook.remove()
    return counter, per_block


def flux_inputs(b: int, n_img: int, n_ref: int, n_txt: int, cfg: dict, device, dtype) -> dict:
    def rand(*shape):
        return torch.randn(*shape, device=device, dtype=dtype)

    return {
        "hidden_states": rand(b, n_img + n_ref, cfg["in_channels"]),
        "encoder_hidden_states": rand(b, n_txt, cfg["joint_attention_dim"]),
        "pooled_projections": rand(b, cfg["pooled_projection_dim"]),
        "timestep": torch.full((b,), 0.5, device=device, dtype=dtype),
        "img_ids": torch.zeros(n_img + n_ref, 3, device=device),
        "txt_ids": torch.zeros(n_txt, 3, device=device),
        "guidance": torch.full((b,), 3.5, device=device, dtype=dtype),
        "return_dict": False,
    }


def build(cfg: dict, rank: int, device: str, dtype):
    from diffusers import FluxTransformer2DModel

    with torch.device(device):
        model = FluxTransformer2DModel(**cfg).to(dtype)
        model.requires_grad_(False)
        add_lora(model, rank, float(rank), ["attention"])
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.float()  # fp32 master LoRA weights
    return model


def check_method_on_cpu() -> None:
    """Meta counting must equal the real saved storages of a small CPU model, once the [heads, N] fp32
    log-sum-exp that the CPU (and GPU) flash attention kernels keep, and meta kernels omit, is added."""
    small = dict(FLUX_DEV, num_layers=2, num_single_layers=2, attention_head_dim=16, num_attention_heads=4)
    small.update(joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=(4, 6, 6))
    totals = {}
    for device in ("cpu", "meta"):
        model = build(small, 4, device, torch.float32)
        inputs = flux_inputs(1, 64, 64, 16, small, device, torch.float32)  # N = 144 tokens, 4 heads
        counter, per_block = saved_activation_bytes(model, inputs)
        totals[device] = counter.total + (len(per_block) * 4 * 144 * 4 if device == "meta" else 0)
    assert totals["cpu"] == totals["meta"], totals
    print(
        f"method check on a small model: real CPU {totals['cpu']} B == meta + log-sum-exp {totals['meta']} B"
    )


def bench_paper_memory(args) -> None:
    check_method_on_cpu()
    rank, n_img, n_ref, n_txt = args.paper_rank, 1024, 1024, 512  # 512 px: (512 / 16)^2 tokens each
    model = build(FLUX_DEV, rank, "meta", torch.bfloat16)
    base = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    lora = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n = n_img + n_ref + n_txt
    inputs = flux_inputs(1, n_img, n_ref, n_txt, FLUX_DEV, "meta", torch.bfloat16)
    counter, per_block = saved_activation_bytes(model, inputs)
    block_inputs = len(per_block) * n * 3072 * 2  # a checkpointed block keeps its [N, 3072] bf16 inputs
    lse = 24 * n * 4  # flash attention's [heads, N] fp32 log-sum-exp per block (not modelled on meta)
    no_ckpt = counter.total + len(per_block) * lse
    ckpt = block_inputs + max(per_block) + lse + (counter.total - sum(per_block))  # + one block recomputed
    rows = [
        ("transformer weights, bf16", base * 2),
        (f"LoRA rank {rank} (attention), fp32 weights", lora * 4),
        ("LoRA gradients, fp32", lora * 4),
        ("AdamW moments, fp32 (2 per param)", lora * 8),
        ("activations / sample, no checkpointing (flash attn)", no_ckpt),
        ("activations / sample, with checkpointing", ckpt),
    ]
    print(f"FLUX.1-dev transformer: {base / 1e9:.3f} B params; LoRA rank {rank}: {lora / 1e6:.1f} M params")
    print(f"tokens: {n_txt} text + {n_img} target + {n_ref} reference = {n}; {len(per_block)} blocks")
    for name, value in rows:
        print(f"{name:62s} {value / GiB:8.2f} GiB")
    fixed = base * 2 + lora * 16
    print(f"{'total, no checkpointing':62s} {(fixed + no_ckpt) / GiB:8.2f} GiB")
    print(f"{'total, with checkpointing':62s} {(fixed + ckpt) / GiB:8.2f} GiB")


def main() -> None:
    diffusers_logging.set_verbosity_error()  # .to(bf16) of the meta model warns about fp32 modules
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--group", type=int, default=12, help="group size G (appendix A: 12)")
    parser.add_argument("--steps", type=int, default=10, help="sampling steps (toy profile: 10)")
    parser.add_argument("--resolution", type=int, default=64, help="pixels (toy profile: 64)")
    parser.add_argument("--fraction", type=float, default=1.0, help="trained share of steps (released: 0.6)")
    parser.add_argument("--rank", type=int, default=8, help="toy LoRA rank")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--checkpointing", action="store_true")
    parser.add_argument("--paper-memory", action="store_true")
    parser.add_argument(
        "--paper-rank", type=int, default=512, help="LoRA rank at paper scale (released: 512)"
    )
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        bench_paper_memory(args) if args.paper_memory else bench_toy(args)


if __name__ == "__main__":
    main()
