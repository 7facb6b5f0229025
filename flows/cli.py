"""The command line every flow shares: one experiment config from a profile, a preset and ``--set``.

    python -m flows.<stage> [--profile toy|test|paper] [--preset paper_default|released_code] [--seed N]
                            [--set dotted.key=value ...]

``--set`` takes any field of :class:`cgrpo_core.config.ExperimentConfig` (``--set grpo.max_steps=6``,
``--set data.syncd_root=/data/syncd``); values are read as JSON when they parse (numbers, true/false, null,
lists), else as strings. Applied in order: preset, profile, ``--seed``, ``--set``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from cgrpo_core.config import PRESETS, PROFILES, ExperimentConfig, experiment_config

__all__ = [
    "add_experiment_arguments",
    "add_row_arguments",
    "experiment_from_args",
    "parse_changes",
    "row_changes",
]


def add_experiment_arguments(parser: argparse.ArgumentParser, profiles: tuple[str, ...] = ()) -> None:
    """``--profile``, ``--preset``, ``--seed`` and ``--set`` (``profiles`` limits the profile choices)."""
    choices = list(profiles or PROFILES)
    parser.add_argument("--profile", default="toy", choices=choices, help="sizes and weights (default: toy)")
    parser.add_argument("--preset", default="paper_default", choices=sorted(PRESETS), help="method preset")
    parser.add_argument("--seed", type=int, help="the experiment's seed (default: the preset's, 0)")
    parser.add_argument(
        "--set",
        dest="changes",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one config field, e.g. --set grpo.max_steps=6 (repeatable)",
    )


def parse_changes(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}`` (JSON values where they parse)."""
    changes: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--set expects KEY=VALUE (e.g. --set grpo.max_steps=6), got {item!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        changes[key.strip()] = value
    return changes


def experiment_from_args(args: argparse.Namespace, **extra: Any) -> ExperimentConfig:
    """The experiment config the arguments describe; ``extra`` dotted changes go last (None: skipped)."""
    changes = {"seed": args.seed} if args.seed is not None else {}
    changes |= parse_changes(args.changes)
    changes |= {k: v for k, v in extra.items() if v is not None}
    try:
        return experiment_config(args.profile, args.preset, changes)
    except ValueError as err:  # unknown paths and invalid values, with what to change
        raise SystemExit(f"invalid configuration: {err}") from None


def add_row_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the stages that take table rows (evaluate, tables): the experiment options, with
    ``--seed`` as the rows' training seed, and ``--dreambench-root``."""
    add_experiment_arguments(parser)
    parser.add_argument("--dreambench-root", help="DreamBench's dataset/ folder (paper profile)")


def row_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The dotted changes ``add_row_arguments``' options make to every row's config."""
    changes: dict[str, Any] = {"seed": args.seed} if args.seed is not None else {}
    if args.dreambench_root:
        changes["evaluation.benchmark.root"] = args.dreambench_root
    return changes | parse_changes(args.changes)
