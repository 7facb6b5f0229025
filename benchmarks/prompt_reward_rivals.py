"""The prompt rewards' within-prompt accuracy broken down by the rival's prompt kind.

The reward zoo's check (``checks._bench_prompt_checks``) reports one accuracy per matched kind: the render
made for a prompt vs a render of the same subject made for another of its prompts. This splits it by the
rival's kind, which shows what a prompt reward judges: a rival in another scene (recontextualization) or
a rival whose subject itself changed (another accessory, another colour or material).

Run (after the main job or ``python -m flows.zoo``, on its store):
    .venv/bin/python benchmarks/prompt_reward_rivals.py \\
        outputs/store/toy_world/<key> outputs/store/reward_zoo/<key>
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402

from cgrpo_core.rewards.registry import RewardSet  # noqa: E402
from cgrpo_core.toy.zoo.rewards.build import zoo_reward_models  # noqa: E402
from cgrpo_core.toy.zoo.rewards.checks import _bench_prompt_renders, _scores  # noqa: E402
from cgrpo_core.toy.zoo.rewards.config import ZooRewardsConfig  # noqa: E402
from cgrpo_core.toy.zoo.rewards.prompt_renders import PROMPT_KINDS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("toy_world", type=Path)
    parser.add_argument("reward_zoo", type=Path)
    args = parser.parse_args()
    rewards = RewardSet(zoo_reward_models(args.reward_zoo))
    renders, rivals = _bench_prompt_renders(args.toy_world, ZooRewardsConfig().checks.seed)
    images = [renders.pil(i) for i in range(len(renders))]
    kinds = np.asarray(renders.kinds)
    rival_kinds = kinds[rivals]
    print("within-prompt accuracy, matched kind (rows) vs rival kind (columns), n pairs in brackets")
    for name in ("hpsv3", "clip_t"):
        wins = _scores(rewards, name, images, renders.prompts) > _scores(
            rewards, name, [images[j] for j in rivals], renders.prompts
        )
        print(f"\n{name:7s} {'all':>13s}" + "".join(f"{k[:13]:>20s}" for k in PROMPT_KINDS))
        for kind in PROMPT_KINDS:
            row = f"{kind[:13]:13s} {wins[kinds == kind].mean():7.3f} ({(kinds == kind).sum():3d})"
            for rival in PROMPT_KINDS:
                sel = (kinds == kind) & (rival_kinds == rival)
                row += f"{wins[sel].mean():13.3f} ({sel.sum():3d})" if sel.any() else f"{'-':>20s}"
            print(row)


if __name__ == "__main__":
    main()
