"""Data behind the paper's analysis figures: Fig. 3 (SARS cross-section), Fig. 6 (TDW curves), Fig. 7
(advantage alignment). Pure functions from an :class:`~cgrpo_core.config.AnalysisConfig` (and reward
samples) to tables; cgrpo_core/plots.py draws them.

Reward samples are a table with one row per generated image: ``group`` (images that share a prompt and
a reference), ``reward_id`` and ``reward_prompt``. Every group needs the same size G >= 2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cgrpo_core.advantages import AGGREGATORS, combine_advantages, conflict_stats, group_normalize
from cgrpo_core.config import AnalysisConfig, TDWConfig
from cgrpo_core.schedules import SCHEDULES, TDWShape, identity_weights, prompt_weights

__all__ = [
    "CATEGORIES",
    "advantage_alignment",
    "check_reward_samples",
    "load_reward_samples",
    "sars_cross_section",
    "synthetic_reward_samples",
    "tdw_curves",
    "tdw_weights",
]

SAMPLE_COLUMNS = ("group", "reward_id", "reward_prompt")
# Fig. 7b's cases, by the signs of (A_id, A_prompt).
CATEGORIES = {
    "perfect": "both advantages > 0",
    "prompt_failure": "A_id > 0, A_prompt < 0",
    "id_failure": "A_id < 0, A_prompt > 0",
    "poor": "both advantages < 0",
    "neutral": "an advantage is exactly 0",
}


def tdw_weights(
    tdw: TDWConfig, num_steps: int, schedule: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(w_id, w_prompt)``, each ``[num_steps]``, for a TDW config (optionally another schedule name)."""
    shape = TDWShape(tdw.prompt_phase_end, tdw.identity_phase_start, tdw.center, tdw.slope)
    name = schedule or tdw.schedule
    extra = {"identity_weight": tdw.released_identity_weight} if name == "released" else {}
    w_prompt = prompt_weights(
        name, num_steps, tdw.w_max, tdw.w_min, shape=shape, dtype=torch.float64, **extra
    )
    return identity_weights(w_prompt), w_prompt


def sars_cross_section(cfg: AnalysisConfig, num_points: int = 401) -> pd.DataFrame:
    """Fig. 3: the final advantage vs A_id at fixed A_prompt, for every aggregation method."""
    a_id = torch.linspace(-3.0, 3.0, num_points, dtype=torch.float64).view(1, -1)  # (1, N)
    a_prompt = torch.full_like(a_id, cfg.cross_section_a_prompt)
    w_id = cfg.cross_section_w_id
    table = {"a_id": a_id.flatten().numpy(), "a_prompt": a_prompt.flatten().numpy()}
    for method in AGGREGATORS:
        out = combine_advantages(a_id, a_prompt, w_id, 1.0 - w_id, method=method, alpha=cfg.advantage.alpha)
        table[method] = out.flatten().numpy()
    return pd.DataFrame(table)


def tdw_curves(cfg: AnalysisConfig) -> pd.DataFrame:
    """Fig. 6 (b): w_prompt and w_id per sampling step for every schedule preset, at the config's bounds.

    ``static`` is drawn at the midpoint of the bounds (its constant when w_max = w_min).
    """
    rows = []
    for name in SCHEDULES:
        w_id, w_prompt = tdw_weights(cfg.tdw, cfg.num_steps, name)
        for step in range(cfg.num_steps):
            rows.append(
                {"schedule": name, "step": step, "w_prompt": float(w_prompt[step]), "w_id": float(w_id[step])}
            )
    return pd.DataFrame(rows)


def synthetic_reward_samples(cfg: AnalysisConfig) -> pd.DataFrame:
    """Seeded stand-in rewards (correlated Gaussians) for when no training run's samples are given."""
    rng = np.random.default_rng(cfg.seed)
    n = cfg.synthetic_groups * cfg.synthetic_group_size
    rho = cfg.synthetic_correlation
    cov = np.array([[1.0, rho], [rho, 1.0]])
    draws = rng.multivariate_normal([0.0, 0.0], cov, size=n)
    return pd.DataFrame(
        {
            "group": np.repeat(np.arange(cfg.synthetic_groups), cfg.synthetic_group_size),
            "reward_id": 0.8 + 0.05 * draws[:, 0],  # DINO-like scale
            "reward_prompt": 7.5 + 0.5 * draws[:, 1],  # HPSv3-like scale
        }
    )


def load_reward_samples(path: str | Path) -> pd.DataFrame:
    """Read reward samples from CSV or Parquet and check them (columns, finiteness, equal group sizes)."""
    path = Path(path)
    if path.suffix not in (".csv", ".parquet"):
        raise ValueError(f"reward samples must be a .csv or .parquet file, got {path.name}")
    if not path.is_file():
        raise FileNotFoundError(f"reward samples file not found: {path}")
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    return check_reward_samples(frame, source=str(path))


def check_reward_samples(frame: pd.DataFrame, source: str = "reward samples") -> pd.DataFrame:
    """Validate a reward-sample table; returns its three columns with float rewards."""
    missing = [c for c in SAMPLE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; need {list(SAMPLE_COLUMNS)}")
    if frame.empty:
        raise ValueError(f"{source}: no rows")
    frame = frame[list(SAMPLE_COLUMNS)].copy()
    for col in ("reward_id", "reward_prompt"):
        values = pd.to_numeric(frame[col], errors="coerce").astype(float)
        if not np.isfinite(values.to_numpy()).all():
            raise ValueError(f"{source}: column {col!r} has non-numeric or non-finite values")
        frame[col] = values
    sizes = frame.groupby("group").size()
    if sizes.nunique() != 1 or int(sizes.iloc[0]) < 2:
        raise ValueError(
            f"{source}: every group needs the same size G >= 2; found sizes {sorted(set(sizes.tolist()))}"
        )
    return frame


def _category(a_id: torch.Tensor, a_prompt: torch.Tensor) -> np.ndarray:
    si, sp = torch.sign(a_id).numpy(), torch.sign(a_prompt).numpy()
    return np.select(
        [(si > 0) & (sp > 0), (si > 0) & (sp < 0), (si < 0) & (sp > 0), (si < 0) & (sp < 0)],
        ["perfect", "prompt_failure", "id_failure", "poor"],
        default="neutral",
    )


def advantage_alignment(
    samples: pd.DataFrame, cfg: AnalysisConfig
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Fig. 7: per-sample advantages and categories, per-category means (linear vs SARS), sign shares.

    Returns ``(per_sample, by_category, conflict_stats)``. Final advantages use scalar weights
    ``cross_section_w_id`` / ``1 - cross_section_w_id`` and the config's alpha, without clipping.
    """
    ordered = check_reward_samples(samples).sort_values("group", kind="stable")
    groups = ordered["group"].nunique()
    r_id = torch.tensor(ordered["reward_id"].to_numpy(), dtype=torch.float64).view(groups, -1)  # (B, G)
    r_prompt = torch.tensor(ordered["reward_prompt"].to_numpy(), dtype=torch.float64).view(
        groups, -1
    )  # (B, G)
    a_id = group_normalize(r_id, eps=cfg.advantage.std_eps)
    a_prompt = group_normalize(r_prompt, eps=cfg.advantage.std_eps)
    w_id = cfg.cross_section_w_id
    final = {
        m: combine_advantages(a_id, a_prompt, w_id, 1.0 - w_id, method=m, alpha=cfg.advantage.alpha)
        for m in ("linear", "sars")
    }
    per_sample = ordered.reset_index(drop=True).assign(
        a_id=a_id.flatten().numpy(),
        a_prompt=a_prompt.flatten().numpy(),
        category=_category(a_id.flatten(), a_prompt.flatten()),
        linear=final["linear"].flatten().numpy(),
        sars=final["sars"].flatten().numpy(),
    )
    by_category = (
        per_sample.groupby("category")
        .agg(count=("linear", "size"), linear=("linear", "mean"), sars=("sars", "mean"))
        .reindex(list(CATEGORIES))
        .fillna({"count": 0})
        .reset_index()
    )
    by_category["share"] = by_category["count"] / len(per_sample)
    return per_sample, by_category, conflict_stats(a_id, a_prompt)
