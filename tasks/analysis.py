"""Prefect tasks of the analysis flow: render the paper's Fig. 3, 6 and 7 and log them to MLflow.

Each figure is a PNG plus the CSV behind it, in one result of the store (``outputs/store/analysis/<key>/``,
built once by ``get_or_build``); its key covers the analysis config, the reward samples' content and the
code that computes and draws the figures.
"""

from __future__ import annotations

import json
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from cgrpo_core import analysis as core
from cgrpo_core.analysis import AnalysisConfig
from cgrpo_core.plots import plot_advantage_alignment, plot_sars_cross_section, plot_tdw_curves, save_figure
from cgrpo_core.schema import config_hash, flatten
from cgrpo_core.store import ResultStore, atomic_write_csv, atomic_write_json, code_version, file_hash
from tasks.tracking import mlflow_run, prefect_run_tags

EXPERIMENT = "analysis"


def _key(config: AnalysisConfig, samples: str | None = None) -> str:
    inputs = {"code": code_version("cgrpo_core.analysis", "cgrpo_core.plots")}
    if samples is not None:
        inputs["samples"] = file_hash(samples)
    return config_hash(config, inputs)


def _sars_cross_section(config: AnalysisConfig, out: Path) -> None:
    """Fig. 3: final advantage vs A_id at fixed A_prompt, linear vs SARS (the CSV has every method)."""
    table = core.sars_cross_section(config)
    atomic_write_csv(out / "fig3_sars_cross_section.csv", table)
    figure = plot_sars_cross_section(table, config.advantage.alpha, config.cross_section_a_prompt)
    save_figure(figure, out / "fig3_sars_cross_section.png")


def _tdw_schedules(config: AnalysisConfig, out: Path) -> None:
    """Fig. 6 (b): w_prompt per step for every TDW preset, at the config's bounds."""
    table = core.tdw_curves(config)
    atomic_write_csv(out / "fig6_tdw_schedules.csv", table)
    save_figure(plot_tdw_curves(table, config.tdw.w_max, config.tdw.w_min), out / "fig6_tdw_schedules.png")


def _advantage_alignment(config: AnalysisConfig, samples: str | None, out: Path) -> None:
    """Fig. 7 for the given reward samples (CSV/Parquet), or for seeded synthetic ones when None."""
    frame = core.synthetic_reward_samples(config) if samples is None else core.load_reward_samples(samples)
    per_sample, by_category, stats = core.advantage_alignment(frame, config)
    atomic_write_csv(out / "fig7_samples.csv", per_sample)
    atomic_write_csv(out / "fig7_by_category.csv", by_category)
    source = "synthetic rewards" if samples is None else Path(samples).name
    title = f"Advantage alignment ({source}, {len(per_sample)} samples, alpha={config.advantage.alpha:g})"
    save_figure(plot_advantage_alignment(per_sample, by_category, stats, title), out / "fig7_alignment.png")
    metrics = {f"share_{k}": v for k, v in stats.items()}
    for row in by_category.dropna(subset=["linear"]).itertuples():
        metrics[f"mean_adv_linear_{row.category}"] = float(row.linear)
        metrics[f"mean_adv_sars_{row.category}"] = float(row.sars)
    atomic_write_json(out / "metrics.json", metrics)


@task(cache_policy=NO_CACHE)
def render_figures(config: AnalysisConfig, samples: str | None) -> str:
    """Fig. 3, 6 and 7 (PNG + CSV) and Fig. 7's shares (metrics.json) in one result folder, built once."""

    def build(out: Path) -> None:
        _sars_cross_section(config, out)
        _tdw_schedules(config, out)
        _advantage_alignment(config, samples, out)

    return str(ResultStore().get_or_build("analysis", _key(config, samples), build))


@task(retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def log_analysis(config: AnalysisConfig, folder: str, samples: str | None) -> str:
    """One MLflow run in experiment ``analysis`` with params, tags, metrics and every file; returns its id."""
    tags = {
        "profile": config.profile,
        "preset": config.preset,
        "config_hash": _key(config, samples),
        "samples": "synthetic" if samples is None else Path(samples).name,
        **prefect_run_tags(),
    }
    with mlflow_run(EXPERIMENT, run_name=config.name, tags=tags) as run:
        run.log_params(flatten(config))
        run.log_metrics(json.loads((Path(folder) / "metrics.json").read_text(encoding="utf-8")))
        for path in sorted(Path(folder).iterdir()):
            if path.suffix in (".png", ".csv"):
                run.log_artifact(path, "figures" if path.suffix == ".png" else "tables")
    return run.run_id
