"""Time to generate the default toy world, and the cost of scoring + filtering it with the baselines.

Run: .venv/bin/python benchmarks/bench_toyworld.py [--workers 2] [--sets 300]

Measures on this machine:
1. generate_toy_world(ToyWorldConfig()) (default: 300 toy SynCD sets at 64 px, ToyBench 30 x 5) with 1 and
   with ``--workers`` processes; target: under a minute on 2 cores. Checks both outputs are byte-identical.
2. read + score (histogram / noise baselines, as the test profile) + filter of that toy SynCD, and the
   planted-defect recovery of the baselines' filter (share of bad sets removed, of good sets kept); the
   toy profile's zoo models: benchmarks/bench_zoo_rewards.py.
"""

from __future__ import annotations

import argparse
import filecmp
import tempfile
import time
from pathlib import Path

from cgrpo_core.config import experiment_config
from cgrpo_core.data.filtering import filter_sets
from cgrpo_core.data.scorers import build_scorer
from cgrpo_core.data.scoring import merge_scores, score_sets
from cgrpo_core.data.syncd import read_syncd
from cgrpo_core.toy.world.config import ToyWorldConfig
from cgrpo_core.toy.world.evaluate import evaluate_filter, load_ground_truth
from cgrpo_core.toy.world.generate import generate_toy_world


def same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    files = [p.relative_to(a) for p in a.rglob("*") if p.is_file()]
    match, mismatch, errors = filecmp.cmpfiles(a, b, [str(f) for f in files], shallow=False)
    return (
        not cmp.left_only and not cmp.right_only and not mismatch and not errors and len(match) == len(files)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sets", type=int, default=ToyWorldConfig().syncd_sets)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        outs = {}
        for workers in sorted({1, args.workers}):
            cfg = ToyWorldConfig(syncd_sets=args.sets, workers=workers)
            start = time.perf_counter()
            world = generate_toy_world(cfg, Path(tmp) / f"w{workers}", progress=False)
            elapsed = time.perf_counter() - start
            outs[workers] = Path(tmp) / f"w{workers}"
            print(
                f"generate: {world['syncd_sets']} sets / {world['syncd_images']} images + ToyBench "
                f"{world['toybench_subjects']} subjects, {workers} worker(s): {elapsed:.1f} s"
            )
        if len(outs) == 2:
            a, b = outs.values()
            print(f"byte-identical across worker counts (whole world): {same_tree(a, b)}")
        root = next(iter(outs.values()))
        cfg = experiment_config(
            "test"
        ).data  # the model-free baselines (the toy profile's zoo: bench_zoo_rewards.py)
        start = time.perf_counter()
        index = read_syncd(root / "syncd")
        run = score_sets(
            index.sets,
            root / "syncd",
            Path(tmp) / "scores",
            build_scorer(cfg.score.identity_scorer),
            build_scorer(cfg.score.aesthetic_scorer),
            progress=False,
        )
        decisions = filter_sets(merge_scores(index.sets, Path(tmp) / "scores"), cfg.filter)
        print(f"read + score ({run.scored} sets) + filter: {time.perf_counter() - start:.1f} s")
        result = evaluate_filter(decisions, load_ground_truth(root / "ground_truth.json"))
        print(
            f"planted bad sets removed: {result['bad_removed_share']:.1%} of {result['bad_sets']} "
            f"{result['removed_share_by_defect']}"
        )
        print(
            f"good sets kept: {result['good_kept_share']:.1%} of {result['good_sets']} "
            f"(plain {result['plain_good_kept_share']:.1%}, edited {result['edited_good_kept_share']:.1%})"
        )


if __name__ == "__main__":
    main()
