"""The toy HPSv3 alone: train it with a given config, time it, and print its prompt-reward checks beside the
toy CLIP-T's on the same pairs.

Run: .venv/bin/python benchmarks/bench_toy_hpsv3.py [--workspace DIR] [--threads 2] [--set FIELD=VALUE ...]

In the workspace (default: $CGRPO_WORKSPACE/bench_toy_hpsv3, else a folder under /tmp), built once and
reused: the default toy world (ToyWorldConfig()), the corpus world and the check world of
``ZooRewardsConfig()`` (the toy profile's reward zoo), and the toy CLIP trained on the world + corpus
captions (the CLIP-T of the comparison). Then, per run: the toy HPSv3 of ``ZooRewardsConfig().hpsv3`` with
the ``--set`` overrides (e.g. ``--set steps=60 --set mix=0.6,0.1,0.2,0.1``), trained as the reward zoo
trains it (renders of its DreamBench-prompt pairs included in the time), and checked through the rewards'
own loaders (``checks.prompt_reward_checks``). Acceptance (held-out data):

1. within-prompt accuracy >= 0.9 per ToyBench prompt kind (recontextualization, accessorization,
   property) and on held-out toy SynCD sets (``*_within_prompt_acc/*``);
2. clean over degraded >= 0.9 (``*_quality_acc``: check-world views; ``*_quality_acc/toybench``);
3. per-template mean of the matched renders spans less than the mean matched-vs-rival gap
   (``*_prompt_mean_span`` < ``*_matched_gap``);
4. time: the toy HPSv3 at the default sizes within ~150 s on 2 cores.

Each run appends its config, metrics, seconds and the machine's load to ``runs.jsonl`` in the workspace.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # the rewards' progress bars, before tqdm is imported

import torch  # noqa: E402

from cgrpo_core.rewards.config import EmbeddingRewardConfig, RewardModels  # noqa: E402
from cgrpo_core.toy.world.config import ToyWorldConfig  # noqa: E402
from cgrpo_core.toy.world.generate import generate_toy_world  # noqa: E402
from cgrpo_core.toy.zoo.rewards.build import DREAMBENCH_PROTOCOL  # noqa: E402
from cgrpo_core.toy.zoo.rewards.checks import prompt_reward_checks  # noqa: E402
from cgrpo_core.toy.zoo.rewards.clip_training import train_clip  # noqa: E402
from cgrpo_core.toy.zoo.rewards.config import HPSv3TrainConfig, ZooRewardsConfig, hpsv3_config  # noqa: E402
from cgrpo_core.toy.zoo.rewards.data import merge_views, other_world, syncd_views  # noqa: E402
from cgrpo_core.toy.zoo.rewards.hpsv3_training import HPSv3Data, train_hpsv3  # noqa: E402

ACCEPTANCE = 0.9


def _value(text: str):
    """A --set value: JSON when it parses (numbers, true/false), a comma list as a tuple, else the text."""
    if "," in text:
        return tuple(_value(t) for t in text.split(","))
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _load() -> str:
    with open("/proc/loadavg", encoding="utf-8") as handle:
        return " ".join(handle.read().split()[:3])


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (the render workers): on a busy
    machine a steadier measure of the work than wall time."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(label: str, make):
    start = time.perf_counter()
    out = make()
    print(f"{label}: {time.perf_counter() - start:.1f} s")
    return out


def prepare(workspace: Path, cfg: ZooRewardsConfig, threads: int) -> tuple[Path, Path, Path, Path]:
    """(world, corpus world, check world, toy CLIP folder), built into ``workspace`` unless there."""
    world, corpus, check = workspace / "world", workspace / "corpus_world", workspace / "check_world"
    if not (world / "world.json").is_file():
        _timed(
            "default toy world",
            lambda: generate_toy_world(ToyWorldConfig(workers=threads), world, progress=False),
        )
    _timed("corpus world", lambda: other_world(world, corpus, cfg.corpus.seed, cfg.corpus.sets, threads))
    _timed("check world", lambda: other_world(world, check, cfg.checks.world_seed, cfg.checks.world_sets))
    clip = workspace / "clip"
    if not (clip / "config.json").is_file():
        views = merge_views(syncd_views(world), syncd_views(corpus))
        _timed("toy CLIP", lambda: train_clip(views, cfg.clip, cfg.degradation, clip, progress=False))
    return world, corpus, check, clip


def report(checks: dict[str, float]) -> None:
    """The metrics of both prompt rewards side by side, acceptance marks on HPSv3's."""
    names = sorted({k.removeprefix("hpsv3_") for k in checks if k.startswith("hpsv3_")})
    print(f"{'metric':34s} {'hpsv3':>9s} {'clip_t':>9s}")
    for name in names:
        hps, clip = checks.get(f"hpsv3_{name}"), checks.get(f"clip_t_{name}", float("nan"))
        mark = ""
        if "_acc" in name and name != "prompt_acc" and name != "scene_acc":
            mark = "  ok" if hps >= ACCEPTANCE else "  BELOW 0.9"
        print(f"{name:34s} {hps:9.3f} {clip:9.3f}{mark}")
    for reward in ("hpsv3", "clip_t"):
        span, gap = checks[f"{reward}_prompt_mean_span"], checks[f"{reward}_matched_gap"]
        verdict = "ok" if span < gap else "NOT below the gap"
        print(f"{reward}: per-template mean span {span:.3f} vs matched gap {gap:.3f}: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = Path(os.environ.get("CGRPO_WORKSPACE", tempfile.gettempdir())) / "bench_toy_hpsv3"
    parser.add_argument("--workspace", type=Path, default=default, help=f"default: {default}")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the budget is for 2 cores)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a field of HPSv3TrainConfig (repeatable; lists as a,b,c)",
    )
    parser.add_argument("--tag", default=None, help="name of the run's folder (default: from the overrides)")
    args = parser.parse_args()
    base = ZooRewardsConfig()
    updates = dict(item.split("=", 1) for item in args.set)
    hpsv3 = HPSv3TrainConfig(**{**base.hpsv3.model_dump(), **{k: _value(v) for k, v in updates.items()}})
    torch.set_num_threads(args.threads)
    workspace = args.workspace
    workspace.mkdir(parents=True, exist_ok=True)
    world, corpus, check, clip = prepare(workspace, base, args.threads)
    tag = args.tag or ("_".join(f"{k}-{v}" for k, v in updates.items()) or "default").replace("/", "-")
    folder = workspace / "runs" / tag / "hpsv3"
    data = HPSv3Data(merge_views(syncd_views(world), syncd_views(corpus)), (world, corpus))
    load_before, cpu_before = _load(), _cpu_seconds()
    start = time.perf_counter()
    curve = train_hpsv3(data, hpsv3, base.degradation, folder, progress=False)
    seconds = time.perf_counter() - start
    load_after, cpu = _load(), _cpu_seconds() - cpu_before
    print(
        f"toy HPSv3 ({tag}): {seconds:.1f} s wall with {args.threads} threads, {cpu:.1f} CPU s "
        f"(render workers included; load {load_before} -> {load_after})"
    )
    tail = curve[-20:]
    print(f"final loss (mean of the last {len(tail)} steps): {sum(v for _, v in tail) / len(tail):.3f}")
    models = RewardModels(
        clip_t=EmbeddingRewardConfig(
            family="clip", model_id="bench/clip", local_dir=str(clip), **DREAMBENCH_PROTOCOL
        ),
        hpsv3=hpsv3_config(folder, hpsv3.image_pixels, f"bench/{tag}/hpsv3"),
    )
    start = time.perf_counter()
    checks = prompt_reward_checks(models, world, check, base.checks, base.degradation)
    check_seconds = time.perf_counter() - start
    print(f"checks: {check_seconds:.1f} s")
    report(checks)
    record = {
        "tag": tag,
        "overrides": updates,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "check_seconds": check_seconds,
        "threads": args.threads,
        "load": [load_before, load_after],
        "final_loss": sum(v for _, v in tail) / len(tail),
        "checks": checks,
    }
    with open(workspace / "runs.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
