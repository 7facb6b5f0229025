"""Data behind the paper's analysis figures: Fig. 3 (SARS cross-section), Fig. 6 (TDW curves), Fig. 7
(advantage alignment). Pure functions from an :class:`AnalysisConfig` (and reward samples) to tables;
cgrpo_core/plots.py draws them.

:func:`analysis_config` takes the advantage and TDW sections and the step count from an experiment
config (a preset: ``paper_default``, ``released_code``, a table row), so the figures show what that
preset trains.

Reward samples are a table with one row per generated image: ``group`` (images that share a prompt and
a reference), ``reward_id`` and ``reward_prompt``. Every group needs the same size G >= 2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from cgrpo_core.advantages import AGGREGATORS, combine_advantages, conflict_stats, group_normalize
from cgrpo_core.config import ExperimentConfig
from cgrpo_core.schedules import SCHEDULES, tdw_weights
from cgrpo_core.schema import NOT_HASHED, Frozen, Profile
from cgrpo_core.training.config import AdvantageConfig, TDWConfig

__all__ = [
    "CATEGORIES",
    "AnalysisConfig",
    "advantage_alignment",
    "analysis_config",
    "check_reward_samples",
    "load_reward_samples",
    "sars_cross_section",
    "synthetic_reward_samples",
    "tdw_curves",
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


class AnalysisConfig(Frozen):
    """The analysis figures (paper Fig. 3, 6, 7): pure functions of these values and of the reward samples."""

    name: str = Field("analysis", description="Run name.", json_schema_extra=NOT_HASHED)
    profile: Profile = Field("toy", description="A label for the MLflow run.", json_schema_extra=NOT_HASHED)
    preset: str = Field(
        "paper_default",
        description="The experiment preset the sections below were taken from (a label).",
        json_schema_extra=NOT_HASHED,
    )
    seed: int = Field(0, description="Seed of the synthetic reward samples (used when none are given).")
    num_steps: int = Field(25, ge=1, description="Sampling steps T for the TDW curves (Fig. 6).")
    advantage: AdvantageConfig = AdvantageConfig()
    tdw: TDWConfig = TDWConfig()
    cross_section_a_prompt: float = Field(1.0, description="A_prompt held fixed in Fig. 3.")
    cross_section_w_id: float = Field(0.5, ge=0, le=1, description="w_id of Fig. 3 (w_prompt = 1 - w_id).")
    synthetic_groups: int = Field(
        300, ge=1, description="Groups of synthetic rewards (appendix B.2 used 300)."
    )
    synthetic_group_size: int = Field(
        12, ge=2, description="Group size of synthetic rewards (appendix B.2: 12)."
    )
    synthetic_correlation: float = Field(
        0.0, ge=-1, le=1, description="Correlation of the synthetic rewards (0: ~50% conflict, as in B.2)."
    )


def analysis_config(experiment: ExperimentConfig, preset: str = "paper_default") -> AnalysisConfig:
    """The figures of what ``experiment`` trains: its advantage and TDW sections and its step count."""
    return AnalysisConfig(
        profile=experiment.profile,
        preset=preset,
        seed=experiment.seed,
        num_steps=experiment.sampler.num_steps,
        advantage=experiment.grpo.advantage,
        tdw=experiment.grpo.tdw,
        synthetic_group_size=experiment.grpo.group_size,
    )


def sars_cross_section(cfg: AnalysisConfig, num_points: int = 401) -> pd.DataFrame:
    """Fig. 3: the final advantage vs A_id at fixed A_prompt, for every aggregation method."""
    a_id = torch.linspace(-3.0, 3.0, num_points, dtype=torch.float64).view(1, -1)  # (1, N)
    a_prompt = torch.full_like(a_id, cfg.cross_section_a_prompt)
    w_id = cfg.cross_section_w_id
    table = {"a_id": a_id.flatten().numpy(), "a_prompt": a_prompt.flatten().numpy()}
    for method in AGGREGATORS:
        out = combine_advantages(
            a_id, a_prompt, w_id, 1.0 - w_id, method=method, alpha=cfg.advantage.alpha, clip=None
        )
        table[method] = out.flatten().numpy()
    return pd.DataFrame(table)


def tdw_curves(cfg: AnalysisConfig) -> pd.DataFrame:
    """Fig. 6 (b): w_prompt and w_id per sampling step for every schedule preset, at the config's bounds.

    ``static`` is drawn at the midpoint of the bounds (its constant when w_max = w_min); ``released`` with
    its identity-phase weight clamped into the bounds (a naive preset's bounds may exclude 0.5).
    """
    rows = []
    low, high = cfg.tdw.w_min, cfg.tdw.w_max
    tdw = cfg.tdw.model_copy(
        update={"released_identity_weight": min(max(cfg.tdw.released_identity_weight, low), high)}
    )
    for name in SCHEDULES:
        w_id, w_prompt = tdw_weights(tdw, cfg.num_steps, name)
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
        m: combine_advantages(
            a_id, a_prompt, w_id, 1.0 - w_id, method=m, alpha=cfg.advantage.alpha, clip=None
        )
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
