"""Filter: scored SynCD sets -> the top-K training sets -> training pairs in the authors' format.

Paper (appendix A): "we filter 10,000 datasets with the highest average DINOv2 similarity and aesthetic
scores". SynCD's loader keeps pairwise DINO scores in [dino_min, 0.98] and aesthetic scores
>= aesthetic_min, both bounds inclusive (``(s >= lo) * (s <= 0.98)``, ``a >= t``).

Per set (only the upper triangle i < j of ``dino_scores`` is read), the first failing check is its reason:

1. ``single_image``: fewer than 2 images, so no pair (whatever the scores say);
2. ``missing_scores``: no identity matrix or not every image has an aesthetic score;
3. ``near_duplicate``: a pair above dino_max;
4. ``low_identity``: a pair below dino_min;
5. ``low_aesthetic``: an image below aesthetic_min;
6. ``not_top_k``: passed, but ranked below the top K.

Scopes (``FilterConfig.scope``): ``set`` keeps a set whole only if every pair and image passes. ``image``
is SynCD's loader: an image stays if its aesthetic passes and it is in at least one in-range pair (with any
image); the set stays if >= 2 images do; when fewer do, the reason is near_duplicate if a pair is above
dino_max, else low_identity if no pair is in range, else low_aesthetic.

Ranking: the mean of the kept images' pairwise scores and the mean of their aesthetic scores, each
min-max normalised over the candidate sets (a constant column normalises to 0), averaged;
ties broken by set id. Pairs: ``pairs_per_set`` pairs (i < j, the reference has the lower index, as in
the authors' list) drawn without replacement with a generator seeded by (seed, crc32(set id)), so a set's
pairs do not depend on which other sets were kept. Output order: rigid, deformable, then other categories,
each by rank (the authors' list has rigid before deformable); ids count from 0.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import pandas as pd

from cgrpo_core.data.config import FilterConfig

__all__ = ["REASONS", "SCOPES", "TRAIN_FIELDS", "filter_sets", "training_pairs"]

REASONS = (
    "kept",
    "single_image",
    "missing_scores",
    "near_duplicate",
    "low_identity",
    "low_aesthetic",
    "not_top_k",
)
TRAIN_FIELDS = ("id", "category", "category_description", "ref_img", "img", "ref_prompt", "text")
CATEGORY_ORDER = {"rigid": 0, "deformable": 1}


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, k=1)


def _set_scope(dino: np.ndarray, aes: np.ndarray, cfg: FilterConfig) -> tuple[str, np.ndarray]:
    """(reason, kept image mask) when the set must pass as a whole."""
    upper = dino[_pairs(len(aes))]
    if (upper > cfg.dino_max).any():
        return "near_duplicate", np.zeros(len(aes), bool)
    if (upper < cfg.dino_min).any():
        return "low_identity", np.zeros(len(aes), bool)
    if (aes < cfg.aesthetic_min).any():
        return "low_aesthetic", np.zeros(len(aes), bool)
    return "kept", np.ones(len(aes), bool)


def _image_scope(dino: np.ndarray, aes: np.ndarray, cfg: FilterConfig) -> tuple[str, np.ndarray]:
    """(reason, kept image mask) as SynCD's loader: images in an in-range pair with a passing aesthetic."""
    rows, cols = _pairs(len(aes))
    upper = dino[rows, cols]
    in_range = (upper >= cfg.dino_min) & (upper <= cfg.dino_max)
    in_pair = np.zeros(len(aes), bool)
    in_pair[rows[in_range]] = True
    in_pair[cols[in_range]] = True
    kept = in_pair & (aes >= cfg.aesthetic_min)
    if kept.sum() >= 2:
        return "kept", kept
    if (upper > cfg.dino_max).any():
        return "near_duplicate", kept
    return ("low_identity" if not in_range.any() else "low_aesthetic"), kept


SCOPES: dict[str, Callable[[np.ndarray, np.ndarray, FilterConfig], tuple[str, np.ndarray]]] = {
    "set": _set_scope,
    "image": _image_scope,
}


def _judge(row, cfg: FilterConfig) -> dict:
    n = int(row.num_images)
    out = {"reason": "single_image", "kept_images": [], "mean_dino": np.nan, "mean_aesthetic": np.nan}
    if n < 2:
        return out
    if row.dino_scores is None or row.aesthetics is None:
        return {**out, "reason": "missing_scores"}
    dino = np.asarray([list(r) for r in row.dino_scores], dtype=np.float64)  # (n, n)
    aes = np.asarray(list(row.aesthetics), dtype=np.float64)  # (n,)
    reason, kept = SCOPES[cfg.scope](dino, aes, cfg)
    sub = kept if kept.sum() >= 2 else np.ones(n, bool)  # report means over all images when rejected
    idx = np.flatnonzero(sub)
    return {
        "reason": reason,
        "kept_images": np.flatnonzero(kept).tolist() if reason == "kept" else [],
        "mean_dino": float(dino[idx][:, idx][_pairs(len(idx))].mean()),
        "mean_aesthetic": float(aes[idx].mean()),
    }


def _minmax(values: pd.Series) -> pd.Series:
    low, high = values.min(), values.max()
    return (values - low) / (high - low) if high > low else values * 0.0


def filter_sets(sets: pd.DataFrame, cfg: FilterConfig) -> pd.DataFrame:
    """``sets`` with the decision columns: reason, kept (bool), kept_images, mean_dino, mean_aesthetic,
    score (ranking score of candidates, NaN otherwise) and rank (0 = best candidate, -1 otherwise)."""
    if cfg.scope not in SCOPES:
        raise ValueError(f"unknown filter scope {cfg.scope!r}; choose one of {sorted(SCOPES)}")
    judged = [_judge(row, cfg) for row in sets.itertuples()]
    out = sets.reset_index(drop=True).assign(
        **{key: [j[key] for j in judged] for key in ("reason", "kept_images", "mean_dino", "mean_aesthetic")}
    )
    candidates = out["reason"] == "kept"
    score = (_minmax(out.loc[candidates, "mean_dino"]) + _minmax(out.loc[candidates, "mean_aesthetic"])) / 2
    out["score"] = score.reindex(out.index).astype(float)
    ranked = out.loc[candidates].sort_values(["score", "set_id"], ascending=[False, True]).index
    out["rank"] = -1
    out.loc[ranked, "rank"] = np.arange(len(ranked))
    out.loc[candidates & (out["rank"] >= cfg.top_k), "reason"] = "not_top_k"
    out["kept"] = out["reason"] == "kept"
    out["kept_images"] = [
        imgs if kept else [] for imgs, kept in zip(out["kept_images"], out["kept"], strict=True)
    ]
    return out


def _draw_pairs(set_id: str, kept: list[int], count: int, seed: int) -> list[tuple[int, int]]:
    rows, cols = _pairs(len(kept))
    rng = np.random.default_rng([seed, zlib.crc32(set_id.encode())])
    chosen = np.sort(rng.permutation(len(rows))[:count])
    return [(kept[rows[c]], kept[cols[c]]) for c in chosen]


def training_pairs(decisions: pd.DataFrame, cfg: FilterConfig) -> pd.DataFrame:
    """One row per training pair of the kept sets: the authors' fields (TRAIN_FIELDS) plus set_id,
    ref_index, index, rank and score. ``ref_img``/``img`` are paths relative to the dataset root."""
    kept = decisions[decisions["kept"]].copy()
    kept["_order"] = kept["category"].map(lambda c: CATEGORY_ORDER.get(c, len(CATEGORY_ORDER)))
    kept = kept.sort_values(["_order", "category", "rank"])
    rows = []
    for row in kept.itertuples():
        for ref, tgt in _draw_pairs(row.set_id, list(row.kept_images), cfg.pairs_per_set, cfg.seed):
            rows.append(
                {
                    "id": str(len(rows)),
                    "category": row.category,
                    "category_description": row.category_description,
                    "ref_img": row.images[ref],
                    "img": row.images[tgt],
                    "ref_prompt": row.prompts[ref],
                    "text": row.prompts[tgt],
                    "set_id": row.set_id,
                    "ref_index": int(ref),
                    "index": int(tgt),
                    "rank": int(row.rank),
                    "score": float(row.score),
                }
            )
    return pd.DataFrame(rows, columns=[*TRAIN_FIELDS, "set_id", "ref_index", "index", "rank", "score"])
