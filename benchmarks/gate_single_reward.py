"""Issue 12's gate, one run: GRPO on the toy world with a single reward, then that reward and the
untrained metrics on held-out ToyBench items, before vs after (paired by item and noise).

The reward is both the identity and the prompt reward of a naive GRPO step (``linear``, static 0.5), so the
advantage is the group-normalised reward itself. Held out: ``--items`` evenly spaced prompts of each of
ToyBench's 30 subjects (never in training), 2 ODE samples each from fixed per-image noise, scored by
DINO-Seg, DINO, CLIP-I (identity) and the toy HPSv3, CLIP-T (prompt). Prints mean after - before and its
standard error over items, overall and by prompt kind.

Run (after the main job, on its store):
    .venv/bin/python benchmarks/gate_single_reward.py outputs/store/toy_world/<key> \\
        outputs/store/policy_zoo/<key> outputs/store/reward_zoo/<key> outputs/store/syncd_filtered/<key> \\
        --reward hpsv3 --steps 40 --seed 0
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from cgrpo_core.config import experiment_config  # noqa: E402
from cgrpo_core.evaluation.generation import benchmark_items, generate_samples  # noqa: E402
from cgrpo_core.policy import encode_condition, load_policy, to_pil  # noqa: E402
from cgrpo_core.rewards.base import RewardBatch  # noqa: E402
from cgrpo_core.rewards.registry import RewardSet  # noqa: E402
from cgrpo_core.schema import override  # noqa: E402
from cgrpo_core.toy.zoo.policy.build import base_policy_config  # noqa: E402
from cgrpo_core.toy.zoo.rewards.build import zoo_reward_models  # noqa: E402
from cgrpo_core.training.grpo import grpo_step  # noqa: E402

METRICS = ("dino_seg", "dino", "clip_i", "hpsv3", "clip_t")


def _held_out(policy, rewards, items, sampler, seed: int) -> np.ndarray:
    """[items, metrics]: each metric's mean over the item's 2 samples."""
    images = generate_samples(policy, items, sampler, 2, seed)
    rows = []
    for item, samples in zip(items, images, strict=True):
        ref = Image.open(item.reference).convert("RGB")
        batch = RewardBatch(
            samples, references=[[ref]] * 2, prompts=[item.prompt] * 2, subjects=[item.class_name] * 2
        )
        got = rewards.score(METRICS, batch)
        rows.append([float(got[m].float().mean()) for m in METRICS])
    return np.asarray(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("toy_world", "policy_zoo", "reward_zoo", "syncd_filtered"):
        parser.add_argument(name, type=Path)
    parser.add_argument("--reward", default="hpsv3", choices=METRICS)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--pairs", type=int, default=2, help="(reference, prompt) pairs per step")
    parser.add_argument("--items", type=int, default=3, help="held-out prompts per ToyBench subject")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], help="grpo field=value (JSON value)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--eta", type=float, help="the rollouts' SDE noise (default: the toy profile's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = experiment_config("toy")
    changes = {"advantage.method": "linear", "tdw.schedule": "static", "tdw.w_max": 0.5, "tdw.w_min": 0.5}
    changes |= {"learning_rate": 3e-4, "clip_range": 1e-3, "inner_epochs": 2}
    changes |= {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    grpo = override(cfg.grpo, changes)
    if args.eta is not None:
        cfg = override(cfg, {"sampler.eta": args.eta})
    policy = load_policy(base_policy_config(args.policy_zoo, cfg.policy))
    rewards = RewardSet(zoo_reward_models(args.reward_zoo))
    bench = args.toy_world / "toybench"
    items = benchmark_items(
        bench / "dataset",
        bench / "dataset" / "prompts_and_classes.txt",
        bench / "toybench_singleip.json",
        args.items,
    )
    train = json.loads((args.syncd_filtered / "train.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(args.seed)

    def score(groups, pairs, refs):
        out = []
        for group, pair, ref in zip(groups, pairs, refs, strict=True):
            images = to_pil(group.images.cpu())
            batch = RewardBatch(
                images, references=[[ref]] * len(images), prompts=[pair["text"]] * len(images)
            )
            out.append(rewards.score([args.reward], batch)[args.reward].float())
        r = torch.stack(out)
        return r, r

    before = _held_out(policy, rewards, items, cfg.sampler, 1234)
    optimizer = torch.optim.AdamW(
        policy.trainable_parameters(), lr=grpo.learning_rate, weight_decay=grpo.weight_decay
    )
    generator, start = torch.Generator().manual_seed(args.seed), time.perf_counter()
    for step in range(args.steps):
        pairs = [train[int(k)] for k in rng.choice(len(train), size=args.pairs, replace=False)]
        refs = [Image.open(args.toy_world / "syncd" / p["ref_img"]).convert("RGB") for p in pairs]
        conds = [
            encode_condition(policy, p["text"], r, cfg.sampler.resolution)
            for p, r in zip(pairs, refs, strict=True)
        ]
        out = grpo_step(
            policy,
            conds,
            functools.partial(score, pairs=pairs, refs=refs),
            grpo,
            cfg.sampler,
            optimizer,
            generator,
        )
        u = out.updates
        print(
            f"step {step + 1}: {args.reward} {float(out.r_id.mean()):.4f} ratio0 {u[0].ratio:.6f} "
            f"clip {np.mean([x.clip_fraction for x in u]):.3f} grad {u[0].grad_norm:.2e} "
            f"({sum(out.seconds.values()):.1f} s)",
            flush=True,
        )
    after = _held_out(policy, rewards, items, cfg.sampler, 1234)
    diff = after - before
    kinds = np.asarray([it.kind for it in items])
    print(
        f"\n{args.reward} only, {args.steps} steps x {args.pairs} pairs x G {grpo.group_size}, "
        f"seed {args.seed}, eta {cfg.sampler.eta}, lr {grpo.learning_rate}, clip {grpo.clip_range}, "
        f"inner epochs {grpo.inner_epochs}, "
        f"{time.perf_counter() - start:.0f} s; held-out {len(items)} items: after - before (+- s.e.)"
    )
    for label, sel in [("all", np.ones(len(items), bool))] + [(k, kinds == k) for k in sorted(set(kinds))]:
        cells = [
            f"{m} {diff[sel, j].mean():+.4f} +- {diff[sel, j].std(ddof=1) / np.sqrt(sel.sum()):.4f}"
            for j, m in enumerate(METRICS)
        ]
        print(f"{label:20s} (n={sel.sum():3d}) " + "  ".join(cells))


if __name__ == "__main__":
    main()
