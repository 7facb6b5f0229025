"""Images per second of each reward on tiny toy-profile checkpoints (CPU, GRPO groups of 12).

    .venv/bin/python benchmarks/bench_rewards.py [--threads 2] [--group 12] [--repeats 15] [--size 64]

Every reward is loaded once through its real loader (as a trainer's RewardSet does), warmed up on one
group, then timed on ``--repeats`` groups of ``--group`` fresh images (median per group); each group
shares one reference and one prompt, as in GRPO. DINO-Seg is timed with both segmenters (toy
Segformer; OWLv2 + SAM). Checkpoints are random-init tiny models of the real classes (see
cgrpo_core/toy/tiny/rewards.py): the numbers measure the pipeline's per-call cost at toy sizes, not the
paper-scale models.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cgrpo_core.rewards import RewardBatch, RewardSet
from cgrpo_core.toy.tiny.rewards import build_tiny_reward_models

# (label, segmenter of the checkpoint set, reward name)
CASES = [
    ("dino", "segformer", "dino"),
    ("dino_seg (segformer)", "segformer", "dino_seg"),
    ("dino_seg (owlv2+sam)", "detector_sam", "dino_seg"),
    ("clip_i", "segformer", "clip_i"),
    ("clip_t", "segformer", "clip_t"),
    ("aesthetic", "segformer", "aesthetic"),
    ("hpsv3", "segformer", "hpsv3"),
]


def _group(rng: np.random.Generator, group: int, size: int) -> RewardBatch:
    images = [
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(group + 1)
    ]
    return RewardBatch(
        images[:group],
        references=[images[group]] * group,
        prompts=["a photo of a red square"] * group,
        subjects=["square"] * group,
    )


def bench(rewards: RewardSet, name: str, group: int, repeats: int, size: int) -> float:
    """Images per second of one reward: group size over the median time of one group (the median
    keeps a burst of load from other processes on a shared machine out of the number)."""
    rng = np.random.default_rng(0)
    reward = rewards.get(name)
    reward(_group(rng, group, size))  # warm-up (first-call allocations)
    times = []
    for batch in [_group(rng, group, size) for _ in range(repeats)]:
        start = time.perf_counter()
        reward(batch)
        times.append(time.perf_counter() - start)
    return group / float(np.median(times))


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--group", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--size", type=int, default=64, help="side of the generated toy images")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        sets = {
            seg: RewardSet(build_tiny_reward_models(Path(tmp) / seg, segmenter=seg))
            for seg in ("segformer", "detector_sam")
        }
        results = {
            label: bench(sets[seg], name, args.group, args.repeats, args.size) for label, seg, name in CASES
        }
    print(f"threads={args.threads} group={args.group} repeats={args.repeats} image={args.size}px")
    for label, rate in results.items():
        print(f"  {label:<22} {rate:8.1f} images/s")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
