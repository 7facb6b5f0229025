"""Issue 12's gate, one run: GRPO on the toy world with a single reward, then that reward and the
untrained metrics on held-out ToyBench items, before vs after (paired by item and noise).

The trainer is the one ``flows.train`` runs (:class:`~cgrpo_core.training.grpo_trainer.GRPOTrainer`) at the
toy profile's GRPO defaults (pairs, G, lr, clip range, inner epochs, eta; ``--set`` and ``--eta`` change
them). The reward is both the identity and the prompt reward of a naive GRPO step (``linear``, static 0.5),
so the advantage is the group-normalised reward itself. Held out: ``--items`` evenly spaced prompts of each
of ToyBench's 30 subjects (never in training), 2 ODE samples each from fixed per-image noise, scored by
DINO-Seg, DINO, CLIP-I (identity) and the toy HPSv3, CLIP-T (prompt). Prints mean after - before and its
standard error over items, overall and by prompt kind.

Run (after the main job, on its store):
    .venv/bin/python benchmarks/gate_single_reward.py outputs/store/toy_world/<key> \\
        outputs/store/policy_zoo/<key> outputs/store/reward_zoo/<key> outputs/store/syncd_filtered/<key> \\
        --reward dino_seg --seed 0
"""

from __future__ import annotations

import argparse
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
from cgrpo_core.policy import load_policy  # noqa: E402
from cgrpo_core.rewards.base import RewardBatch  # noqa: E402
from cgrpo_core.rewards.registry import RewardSet  # noqa: E402
from cgrpo_core.rows import get_row, row_config  # noqa: E402
from cgrpo_core.schema import override  # noqa: E402
from cgrpo_core.toy.zoo.policy.build import base_policy_config  # noqa: E402
from cgrpo_core.toy.zoo.rewards.build import zoo_reward_models  # noqa: E402
from cgrpo_core.training.data import read_train_list  # noqa: E402
from cgrpo_core.training.grpo_trainer import GRPOTrainer  # noqa: E402

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
    parser.add_argument(
        "--row",
        help="train a table row instead (e.g. table-2/naive-1-1): its advantage, TDW and its two rewards "
        "(issue 12's evidence runs); --reward is then ignored",
    )
    parser.add_argument("--steps", type=int, default=experiment_config("toy").grpo.max_steps)
    parser.add_argument("--pairs", type=int, help="(reference, prompt) pairs per step (default: the toy's)")
    parser.add_argument("--items", type=int, default=3, help="held-out prompts per ToyBench subject")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set", action="append", default=[], help="grpo field=value or sampler.field=value (JSON value)"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--eta", type=float, help="the rollouts' SDE noise (default: the toy profile's)")
    parser.add_argument(
        "--json", type=Path, help="also write the result here (benchmarks/gate_seeds.py reads it)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = row_config(get_row(args.row), "toy") if args.row else experiment_config("toy")
    names = (cfg.rewards.id, cfg.rewards.prompt) if args.row else (args.reward, args.reward)
    changes = {} if args.row else {"advantage.method": "linear", "tdw.schedule": "static"}
    changes |= {} if args.row else {"tdw.w_max": 0.5, "tdw.w_min": 0.5}
    changes |= {"prompts_per_step": args.pairs or cfg.grpo.prompts_per_step, "max_steps": args.steps}
    sets = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    changes |= {k: v for k, v in sets.items() if not k.startswith("sampler.")}
    grpo = override(cfg.grpo, changes)
    sampler = {k: v for k, v in sets.items() if k.startswith("sampler.")}
    if args.eta is not None:
        sampler["sampler.eta"] = args.eta
    if sampler:
        cfg = override(cfg, sampler)
    policy = load_policy(base_policy_config(args.policy_zoo, cfg.policy))
    rewards = RewardSet(zoo_reward_models(args.reward_zoo))
    bench = args.toy_world / "toybench"
    items = benchmark_items(
        bench / "dataset",
        bench / "dataset" / "prompts_and_classes.txt",
        bench / "toybench_singleip.json",
        args.items,
    )
    pairs = read_train_list(args.syncd_filtered / "train.json", args.toy_world / "syncd")

    def score(pair, images):
        ref = Image.open(pair.reference).convert("RGB")
        batch = RewardBatch(images, references=[[ref]] * len(images), prompts=[pair.prompt] * len(images))
        got = rewards.score(set(names), batch)
        return got[names[0]].float(), got[names[1]].float()

    before = _held_out(policy, rewards, items, cfg.sampler, 1234)
    trainer = GRPOTrainer(policy, pairs, score, names, grpo, cfg.sampler, args.seed)
    start = time.perf_counter()
    for step in range(args.steps):
        m = trainer.step(step)
        print(
            f"step {step + 1}: "
            + " ".join(f"{n} {m[f'reward/{n}_mean']:.4f}" for n in dict.fromkeys(names))
            + f" conflict {m['conflict/conflict']:.2f} "
            f"ratio0 {m['ratio_first_update']:.6f} clip {m['clip_fraction']:.3f} grad {m['grad_norm']:.2e} "
            + (f"kl_base {m['kl_to_base']:.2e} " if "kl_to_base" in m else "")
            + f"({m['seconds/step']:.1f} s: sampling {m['seconds/sampling']:.1f}, "
            f"reward {m['seconds/reward']:.1f}, update {m['seconds/update']:.1f})",
            flush=True,
        )
    after = _held_out(policy, rewards, items, cfg.sampler, 1234)
    diff = after - before
    kinds = np.asarray([it.kind for it in items])
    print(
        f"\n{args.row or args.reward + ' only'} (GRPOTrainer), {args.steps} steps x "
        f"{grpo.prompts_per_step} pairs x G {grpo.group_size}, "
        f"seed {args.seed}, eta {cfg.sampler.eta}, same group noise {cfg.sampler.same_group_noise}, "
        f"lr {grpo.learning_rate}, clip {grpo.clip_range}, "
        f"inner epochs {grpo.inner_epochs}, kl {grpo.kl_coef}, "
        f"{time.perf_counter() - start:.0f} s; held-out {len(items)} items: after - before (+- s.e.)"
    )
    for label, sel in [("all", np.ones(len(items), bool))] + [(k, kinds == k) for k in sorted(set(kinds))]:
        cells = [
            f"{m} {diff[sel, j].mean():+.4f} +- {diff[sel, j].std(ddof=1) / np.sqrt(sel.sum()):.4f}"
            for j, m in enumerate(METRICS)
        ]
        print(f"{label:20s} (n={sel.sum():3d}) " + "  ".join(cells))
    if args.json:
        result = {
            "reward": None if args.row else args.reward,
            "row": args.row,
            "seed": args.seed,
            "steps": args.steps,
            "settings": {"eta": cfg.sampler.eta, "same_group_noise": cfg.sampler.same_group_noise}
            | grpo.model_dump(mode="json"),
            "items": len(items),
            "change": {  # after - before: mean and standard error over items, per metric
                m: [float(diff[:, j].mean()), float(diff[:, j].std(ddof=1) / np.sqrt(len(items)))]
                for j, m in enumerate(METRICS)
            },
        }
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(args.json)


if __name__ == "__main__":
    main()
