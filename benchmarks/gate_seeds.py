"""Issue 12's gate over seeds: ``gate_single_reward.py`` for each reward (or a row) and seed, some runs at
a time, then one Markdown table: each seed's change (after - before on held-out ToyBench, +- its standard
error over items) and the mean over seeds with its 95% t-interval, and the gate's verdict.

The gate: the trained metric's interval lies above 0, and no untrained metric of the same kind falls (its
interval does not lie below 0): identity (DINO-Seg) beside DINO v1 and CLIP-I; prompt (toy HPSv3) beside
CLIP-T. Each run's result stays in ``--out`` (one JSON file per run, reused when it is there), so a sweep
that stopped resumes where it was and more seeds can be added later.

Run (after the main job, on its store; the four folders as for gate_single_reward.py):
    .venv/bin/python benchmarks/gate_seeds.py WORLD POLICY_ZOO REWARD_ZOO SYNCD_FILTERED \\
        --out outputs/gate/same-noise-kl --seeds 0,1,2 \\
        --set sampler.same_group_noise=true --set kl_coef=0.04
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cgrpo_core.reproduce import combine_seeds

HERE = Path(__file__).resolve().parent
# trained metric(s) -> untrained metrics of the same kind (the verdict) and metrics shown beside
ROLES = {
    "dino_seg": (("dino_seg",), ("dino", "clip_i"), ("clip_t",)),
    "hpsv3": (("hpsv3",), ("clip_t",), ("dino_seg",)),
}
ROW = (("dino_seg", "hpsv3"), ("dino", "clip_i", "clip_t"), ())  # a table row: both rewards, no verdict


def _run(stores: list[str], name: str, seed: int, args: argparse.Namespace) -> Path:
    out = args.out / f"{name.replace('/', '_')}-{seed}.json"
    if out.is_file():
        return out
    target = ["--row", name] if args.row else ["--reward", name]
    command = [sys.executable, str(HERE / "gate_single_reward.py"), *stores, *target, "--seed", str(seed)]
    command += ["--threads", str(args.threads), "--json", str(out), *args.extra]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    with (args.out / f"{out.stem}.log").open("w") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, check=False).returncode
    if code != 0:
        raise RuntimeError(f"{name} seed {seed} failed (exit {code}): see {args.out / (out.stem + '.log')}")
    return out


def table(results: dict[str, list[dict]]) -> str:
    """The Markdown table (module docstring) of each reward's (or row's) per-seed results."""
    lines = [
        "| trained | seed | trained metric | untrained, same kind | beside |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, runs in results.items():
        trained, kind, other = ROLES.get(name, ROW)
        for run in sorted(runs, key=lambda r: r["seed"]):
            c = run["change"]
            cells = [
                ", ".join(f"{m} {c[m][0]:+.3f} +- {c[m][1]:.3f}" for m in ms) for ms in (trained, kind, other)
            ]
            lines.append(f"| {name} | {run['seed']} | " + " | ".join(cells) + " |")
        if len(runs) < 2:
            continue
        combined = combine_seeds([{m: (v[0], v[0], v[0]) for m, v in r["change"].items()} for r in runs])
        cells = [
            ", ".join(f"{m} {combined[m][0]:+.3f} [{combined[m][1]:+.3f}, {combined[m][2]:+.3f}]" for m in ms)
            for ms in (trained, kind, other)
        ]
        if name in ROLES:
            passed = all(combined[m][1] > 0 for m in trained) and all(combined[m][2] >= 0 for m in kind)
            cells[-1] += f"; gate **{'passes' if passed else 'does not pass'}**"
        lines.append(f"| {name} | mean of {len(runs)} (95% t) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", nargs=4, help="toy_world policy_zoo reward_zoo syncd_filtered folders")
    parser.add_argument("--out", type=Path, required=True, help="folder for each run's JSON and log")
    parser.add_argument("--rewards", default="dino_seg,hpsv3", help="comma-separated single rewards")
    parser.add_argument("--row", help="train this table row on each seed instead of single rewards")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (one thread each by default)")
    parser.add_argument("--threads", type=int, default=1)
    args, args.extra = parser.parse_known_args()  # the rest goes to gate_single_reward.py (--set, --steps)
    args.out.mkdir(parents=True, exist_ok=True)
    sweep = args.out / "sweep.json"  # the settings every result in --out was made with
    if sweep.is_file() and json.loads(sweep.read_text()) != args.extra:
        raise SystemExit(
            f"{args.out} holds runs made with {' '.join(json.loads(sweep.read_text())) or 'no options'}, "
            f"not {' '.join(args.extra) or 'no options'}: give another --out"
        )
    sweep.write_text(json.dumps(args.extra))
    names = [args.row] if args.row else args.rewards.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(name, seed) for seed in seeds for name in names]
    with ThreadPoolExecutor(args.jobs) as pool:
        files = list(pool.map(lambda job: _run(args.stores, *job, args), jobs))
    results: dict[str, list[dict]] = {name: [] for name in names}
    for (name, _), file in zip(jobs, files, strict=True):
        results[name].append(json.loads(file.read_text()))
    print(f"gate_single_reward.py {' '.join(args.extra)}\n")
    print(table(results))


if __name__ == "__main__":
    main()
