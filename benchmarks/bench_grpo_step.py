"""Seconds per toy GRPO step, naive GRPO vs Customized-GRPO side by side, split into sampling / reward /
update (issue 12's benchmark; the paper's Table 8: SARS + TDW cost +7%, 311.82 s vs 291.28 s per step).

Both methods run the same step on the same pairs and seeds: the toy profile's sampler and group size,
the toy zoo's base policy (LoRA of the toy profile's rank) and its DINO-Seg + toy HPSv3 as the rewards.
Naive is ``linear`` with the ``static`` 0.5 schedule; Customized-GRPO is the paper preset (``sars``,
``paper`` TDW). Steps alternate between the methods so that machine drift hits both alike; the first
step of each is a warm-up and not counted.

Run (after the main job, on its store):
    .venv/bin/python benchmarks/bench_grpo_step.py outputs/store/toy_world/<key> \\
        outputs/store/policy_zoo/<key> outputs/store/reward_zoo/<key> outputs/store/syncd_filtered/<key>
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from cgrpo_core.config import experiment_config  # noqa: E402
from cgrpo_core.policy import encode_condition, load_policy, to_pil  # noqa: E402
from cgrpo_core.rewards.base import RewardBatch  # noqa: E402
from cgrpo_core.rewards.registry import RewardSet  # noqa: E402
from cgrpo_core.schema import override  # noqa: E402
from cgrpo_core.toy.zoo.policy.build import base_policy_config  # noqa: E402
from cgrpo_core.toy.zoo.rewards.build import zoo_reward_models  # noqa: E402
from cgrpo_core.training.grpo import grpo_step  # noqa: E402

METHODS = {
    "naive 1:1": {"advantage.method": "linear", "tdw.schedule": "static", "tdw.w_max": 0.5, "tdw.w_min": 0.5},
    "customized-grpo": {},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("toy_world", "policy_zoo", "reward_zoo", "syncd_filtered"):
        parser.add_argument(name, type=Path)
    parser.add_argument("--steps", type=int, default=6, help="counted steps per method (default 6)")
    parser.add_argument("--pairs", type=int, default=2, help="(reference, prompt) pairs per step")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = experiment_config("toy")
    policy = load_policy(base_policy_config(args.policy_zoo, cfg.policy))
    rewards = RewardSet(zoo_reward_models(args.reward_zoo))
    pairs = json.loads((args.syncd_filtered / "train.json").read_text(encoding="utf-8"))[: args.pairs]
    refs = [Image.open(args.toy_world / "syncd" / p["ref_img"]).convert("RGB") for p in pairs]
    conds = [
        encode_condition(policy, p["text"], r, cfg.sampler.resolution)
        for p, r in zip(pairs, refs, strict=True)
    ]

    def score(groups):
        out = []
        for group, pair, ref in zip(groups, pairs, refs, strict=True):
            images = to_pil(group.images.cpu())
            batch = RewardBatch(
                images, references=[[ref]] * len(images), prompts=[pair["text"]] * len(images)
            )
            got = rewards.score([cfg.rewards.id, cfg.rewards.prompt], batch)
            out.append((got[cfg.rewards.id], got[cfg.rewards.prompt]))
        return torch.stack([a for a, _ in out]).float(), torch.stack([b for _, b in out]).float()

    grpos = {name: override(cfg.grpo, changes) for name, changes in METHODS.items()}
    start = [p.detach().clone() for p in policy.trainable_parameters()]
    seconds: dict[str, list[dict[str, float]]] = {name: [] for name in METHODS}
    for step in range(args.steps + 1):
        for name, grpo in grpos.items():
            with torch.no_grad():  # every step from the same LoRA: a timing, not a training run
                for param, value in zip(policy.trainable_parameters(), start, strict=True):
                    param.copy_(value)
            optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=grpo.learning_rate)
            out = grpo_step(
                policy, conds, score, grpo, cfg.sampler, optimizer, torch.Generator().manual_seed(step)
            )
            if step:
                seconds[name].append(out.seconds)
    print(
        f"{cfg.grpo.group_size} samples x {args.pairs} pairs, {cfg.sampler.num_steps} steps, "
        f"{cfg.sampler.resolution} px, {args.threads} threads; median over {args.steps} steps (s)"
    )
    print(f"{'method':18s} {'sampling':>9s} {'reward':>9s} {'update':>9s} {'total':>9s}")
    totals = {}
    for name, rows in seconds.items():
        parts = {k: statistics.median(r[k] for r in rows) for k in ("sampling", "reward", "update")}
        totals[name] = statistics.median(sum(r.values()) for r in rows)
        print(f"{name:18s} " + " ".join(f"{parts[k]:9.3f}" for k in parts) + f" {totals[name]:9.3f}")
    naive, custom = totals["naive 1:1"], totals["customized-grpo"]
    print(f"Customized-GRPO vs naive: {100 * (custom - naive) / naive:+.2f}% per step")


if __name__ == "__main__":
    main()
