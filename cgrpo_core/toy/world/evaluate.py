"""How well a filter pass recovers the toy SynCD's planted defects (reads ground_truth.json; the pipeline
itself never does).

A bad set counts as removed when it was rejected, or kept without any of its bad views (the ``image``
scope can drop a drifted or degraded view and keep the rest). A good set counts as kept when it was kept.
Sets missing from the decisions (unreadable input) count as rejected.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

__all__ = ["check_metrics", "evaluate_filter", "load_ground_truth"]


def load_ground_truth(path: str | Path) -> dict:
    """The ``sets`` mapping of a toy world's ground_truth.json."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))["sets"]
    except (OSError, json.JSONDecodeError, KeyError) as err:
        raise ValueError(f"{path}: not a toy world ground truth ({err})") from err


def _share(flags: list[bool]) -> float:
    return float(sum(flags) / len(flags)) if flags else float("nan")


def evaluate_filter(decisions: pd.DataFrame, ground_truth: dict) -> dict:
    """Shares of good sets kept and bad sets removed (overall, per defect, plain vs edited good sets)."""
    by_id = {row.set_id: row for row in decisions.itertuples()}
    good, bad = {}, {}
    for set_id, truth in ground_truth.items():
        row = by_id.get(set_id)
        kept = set(row.kept_images) if row is not None and row.kept else set()
        if truth["status"] == "good":
            good[set_id] = (bool(kept), truth.get("edit"))
        else:
            bad[set_id] = (not (kept & set(truth["bad_views"])), truth["defect"])
    defects = sorted({d for _, d in bad.values()})
    return {
        "good_sets": len(good),
        "bad_sets": len(bad),
        "good_kept_share": _share([k for k, _ in good.values()]),
        "bad_removed_share": _share([r for r, _ in bad.values()]),
        "plain_good_kept_share": _share([k for k, e in good.values() if e is None]),
        "edited_good_kept_share": _share([k for k, e in good.values() if e is not None]),
        "removed_share_by_defect": {d: _share([r for r, x in bad.values() if x == d]) for d in defects},
        "lost_good_sets": sorted(s for s, (k, _) in good.items() if not k),
        "missed_bad_sets": sorted(s for s, (r, _) in bad.items() if not r),
    }


def check_metrics(result: dict) -> dict[str, float]:
    """The shares of :func:`evaluate_filter` as flat MLflow metrics (NaN shares left out)."""
    flat = {k: v for k, v in result.items() if isinstance(v, int | float)}  # counts and shares
    flat |= {f"removed_share_{d}": v for d, v in result["removed_share_by_defect"].items()}
    return {f"toy_{k}": float(v) for k, v in flat.items() if isinstance(v, int | float) and v == v}
