"""Time, memory and check metrics of the toy reward zoo at the toy preset, then the toy SynCD filter check.

Run: .venv/bin/python benchmarks/bench_zoo_rewards.py [--threads 2] [--keep DIR]

Measures on this machine:
1. the default toy world (ToyWorldConfig(): 300 sets at 64 px), generated into a temporary folder (not
   part of the reward budget: the zoo receives it);
2. train_reward_zoo(world, out, ZooRewardsConfig()): wall time per model (target: all reward
   models together within 5 minutes on 2 cores), peak RSS, and every check metric (toy/zoo/rewards/checks.py;
   acceptance: dino_seg_auc >= 0.9, clip_t_top1 >= 0.8, aesthetic_auc >= 0.9, DINO-Seg's background
   shift far below plain DINO's);
3. the toy filter check of the data issue: the toy SynCD scored with the zoo's DINOv2 and aesthetic head
   (the toy profile's scorers), filtered with the toy profile's FilterConfig, compared with the planted
   defects (target: >= 90% of bad sets removed, >= 90% of good sets kept); also both scopes and a few
   thresholds around the configured ones, for the record.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from cgrpo_core.config import experiment_config
from cgrpo_core.data.filtering import filter_sets
from cgrpo_core.data.scorers import build_scorer, with_zoo_models
from cgrpo_core.data.scoring import merge_scores, score_sets
from cgrpo_core.data.syncd import read_syncd
from cgrpo_core.toy.world.config import ToyWorldConfig
from cgrpo_core.toy.world.evaluate import evaluate_filter, load_ground_truth
from cgrpo_core.toy.world.generate import generate_toy_world
from cgrpo_core.toy.zoo.rewards.build import MANIFEST, train_reward_zoo
from cgrpo_core.toy.zoo.rewards.config import ZooRewardsConfig


def peak_rss_mib() -> tuple[float, float]:
    """Peak resident memory (MiB) of this process and of its finished children (world generation)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def filter_check(world: Path, models, scores_dir: Path) -> None:
    cfg = experiment_config("toy").data
    score = with_zoo_models(cfg.score, models)
    index = read_syncd(world / "syncd")
    start = time.perf_counter()
    score_sets(
        index.sets,
        world / "syncd",
        scores_dir,
        build_scorer(score.identity_scorer, score),
        build_scorer(score.aesthetic_scorer, score),
        progress=False,
    )
    print(
        f"\nscoring the toy SynCD ({len(index.sets)} sets) with the zoo: {time.perf_counter() - start:.1f} s"
    )
    scored = merge_scores(index.sets, scores_dir)
    truth = load_ground_truth(world / "ground_truth.json")
    base = cfg.filter
    print(
        f"toy profile filter: dino_min {base.dino_min}, dino_max {base.dino_max}, "
        f"aesthetic_min {base.aesthetic_min}, scope {base.scope}"
    )
    print("scope  dino_min  aes_min | bad removed  good kept (plain / edited) | by defect")
    for scope in ("set", "image"):
        for dino_min in (base.dino_min - 0.05, base.dino_min, base.dino_min + 0.05):
            for aes_min in (base.aesthetic_min - 0.5, base.aesthetic_min, base.aesthetic_min + 0.5):
                f = base.model_copy(update={"scope": scope, "dino_min": dino_min, "aesthetic_min": aes_min})
                r = evaluate_filter(filter_sets(scored, f), truth)
                mark = "  <- toy profile" if f == base else ""
                by = ", ".join(f"{k} {v:.0%}" for k, v in r["removed_share_by_defect"].items())
                print(
                    f"{scope:5s}  {dino_min:8.2f}  {aes_min:7.2f} | {r['bad_removed_share']:11.1%}  "
                    f"{r['good_kept_share']:9.1%} ({r['plain_good_kept_share']:.1%} / "
                    f"{r['edited_good_kept_share']:.1%}) | {by}{mark}"
                )
    result = evaluate_filter(filter_sets(scored, base), truth)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}, indent=1))
    print(f"lost good sets: {result['lost_good_sets']}\nmissed bad sets: {result['missed_bad_sets']}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the budget is for 2 cores)")
    parser.add_argument("--keep", type=Path, help="build the zoo here and keep it (default: a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        world = Path(tmp) / "world"
        start = time.perf_counter()
        generate_toy_world(ToyWorldConfig(workers=2), world, progress=False)
        print(f"default toy world: {time.perf_counter() - start:.1f} s (not part of the reward budget)")
        out = args.keep or Path(tmp) / "zoo"
        cfg = ZooRewardsConfig().model_copy(update={"threads": args.threads})  # the toy profile's
        start = time.perf_counter()
        models, curves, checks = train_reward_zoo(world, out, cfg)
        total = time.perf_counter() - start
        seconds = json.loads((out / MANIFEST).read_text(encoding="utf-8"))["seconds"]
        print(f"\nreward zoo, toy preset, {args.threads} threads: {total:.1f} s in all (budget 300 s)")
        for name, value in seconds.items():
            print(f"  {name.removeprefix('seconds_'):10s} {value:6.1f} s")
        own, children = peak_rss_mib()
        print(f"peak RSS: {own:.0f} MiB (this process), {children:.0f} MiB (world-generation workers)")
        print("final training losses: " + ", ".join(f"{k} {v[-1][1]:.3f}" for k, v in curves.items()))
        print("checks:")
        for name, value in checks.items():
            print(f"  {name:28s} {value:.4f}")
        filter_check(world, models, Path(tmp) / "scores")


if __name__ == "__main__":
    main()
