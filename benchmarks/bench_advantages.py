"""Cost of the paper's contribution per GRPO step: group advantages + TDW weights + SARS combination.

Run: .venv/bin/python benchmarks/bench_advantages.py

Measures, on this machine's CPU with 2 threads:
1. the advantage pipeline for one prompt's group (B=1, G=12) over T=25 sampling steps:
   two group_normalize calls, tdw_weights (paper TDW), combine_advantages (SARS, clip 5);
2. a lower bound of one toy GRPO step: a single forward + backward of the toy-size FLUX transformer on
   the group (12 x 64 image tokens + 64 reference tokens). A real step does T rollout forwards plus a
   forward + backward per trained step, so it costs several times this bound.
The ratio (1) / (2) is an upper bound of SARS + TDW's share of a toy GRPO step (target: well under 1%).
"""

from __future__ import annotations

import statistics
import time

import torch
from diffusers import FluxTransformer2DModel

from cgrpo_core.advantages import combine_advantages, group_normalize
from cgrpo_core.schedules import tdw_weights
from cgrpo_core.training.config import AdvantageConfig, TDWConfig


def time_it(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


ADV, TDW = AdvantageConfig(), TDWConfig()  # the paper's: SARS alpha 0.5, clip 5, TDW 0.7 / 0.3


def advantage_pipeline(r_id: torch.Tensor, r_prompt: torch.Tensor) -> torch.Tensor:
    w_id, w_prompt = tdw_weights(TDW, 25, dtype=torch.float32)
    a_id, a_prompt = group_normalize(r_id, ADV.std_eps), group_normalize(r_prompt, ADV.std_eps)
    return combine_advantages(a_id, a_prompt, w_id, w_prompt, ADV.method, ADV.alpha, ADV.clip)


def toy_forward_backward_bound() -> float:
    model = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=2,
        num_single_layers=2,
        attention_head_dim=16,
        num_attention_heads=4,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        guidance_embeds=True,
        axes_dims_rope=(4, 6, 6),
    )
    g, n_img, n_ref, n_txt = 12, 64, 64, 8
    hidden = torch.randn(g, n_img + n_ref, 16)
    ids = torch.zeros(n_img + n_ref, 3)
    txt = torch.randn(g, n_txt, 32)

    def step():
        out = model(
            hidden_states=hidden,
            encoder_hidden_states=txt,
            pooled_projections=torch.randn(g, 32),
            timestep=torch.full((g,), 0.5),
            img_ids=ids,
            txt_ids=torch.zeros(n_txt, 3),
            guidance=torch.full((g,), 3.5),
            return_dict=False,
        )[0]
        out.square().mean().backward()

    params = sum(p.numel() for p in model.parameters())
    seconds = time_it(step, repeats=5, warmup=1)
    print(
        f"toy transformer: {params / 1e6:.2f} M params, "
        f"one forward+backward on the group: {seconds * 1e3:.1f} ms"
    )
    return seconds


def main() -> None:
    torch.set_num_threads(2)
    r_id, r_prompt = torch.rand(1, 12), torch.rand(1, 12) * 10
    adv = time_it(lambda: advantage_pipeline(r_id, r_prompt), repeats=2000)
    print(f"advantages (B=1, G=12, T=25, sars + paper TDW + clip): {adv * 1e6:.1f} us per call")
    bound = toy_forward_backward_bound()
    print(f"share of a toy GRPO step: < {100 * adv / bound:.3f}% (ratio to a single forward+backward)")


if __name__ == "__main__":
    main()
