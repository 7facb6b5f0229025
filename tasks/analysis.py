"""Prefect tasks of the analysis flow: render the paper's Fig. 3, 6 and 7 and log them to MLflow.

Each figure is a PNG plus the CSV behind it, written atomically under
``outputs/analysis/<config_hash>/``; files that already exist are reused (same hash, same content).
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from cgrpo_core import analysis as core
from cgrpo_core.config import AnalysisConfig, config_hash, flatten
from cgrpo_core.plots import plot_advantage_alignment, plot_sars_cross_section, plot_tdw_curves, save_figure
from cgrpo_core.store import atomic_write_csv, file_hash, workspace
from tasks.tracking import mlflow_run, prefect_run_tags

# Bump when the code that draws or computes the figures changes: it is part of the result's hash.
ANALYSIS_CODE_VERSION = "analysis-v1"
EXPERIMENT = "analysis"


def _have(*paths: Path) -> bool:
    return all(p.is_file() for p in paths)


@task(cache_policy=NO_CACHE)
def analysis_key(config: AnalysisConfig, samples: str | None = None) -> tuple[str, str]:
    """The result's hash (config + reward samples + code version) and its output directory."""
    inputs = {"code": ANALYSIS_CODE_VERSION}
    if samples is not None:
        inputs["samples"] = file_hash(samples)
    key = config_hash(config, inputs)
    out = workspace() / "outputs" / "analysis" / key
    out.mkdir(parents=True, exist_ok=True)
    return key, str(out)


@task(cache_policy=NO_CACHE)
def render_sars_cross_section(config: AnalysisConfig, out_dir: str) -> list[str]:
    """Fig. 3: final advantage vs A_id at fixed A_prompt, linear vs SARS (CSV has every method)."""
    csv, png = Path(out_dir) / "fig3_sars_cross_section.csv", Path(out_dir) / "fig3_sars_cross_section.png"
    if not _have(csv, png):
        table = core.sars_cross_section(config)
        atomic_write_csv(csv, table)
        save_figure(
            plot_sars_cross_section(table, config.advantage.alpha, config.cross_section_a_prompt), png
        )
    return [str(csv), str(png)]


@task(cache_policy=NO_CACHE)
def render_tdw_schedules(config: AnalysisConfig, out_dir: str) -> list[str]:
    """Fig. 6 (b): w_prompt per step for every TDW preset."""
    csv, png = Path(out_dir) / "fig6_tdw_schedules.csv", Path(out_dir) / "fig6_tdw_schedules.png"
    if not _have(csv, png):
        table = core.tdw_curves(config)
        atomic_write_csv(csv, table)
        save_figure(plot_tdw_curves(table, config.tdw.w_max, config.tdw.w_min), png)
    return [str(csv), str(png)]


@task(cache_policy=NO_CACHE)
def render_advantage_alignment(
    config: AnalysisConfig, samples: str | None, out_dir: str
) -> tuple[list[str], dict[str, float]]:
    """Fig. 7 for the given reward samples (CSV/Parquet), or for seeded synthetic ones when None."""
    out = Path(out_dir)
    files = [out / "fig7_samples.csv", out / "fig7_by_category.csv", out / "fig7_advantage_alignment.png"]
    frame = core.synthetic_reward_samples(config) if samples is None else core.load_reward_samples(samples)
    per_sample, by_category, stats = core.advantage_alignment(frame, config)
    if not _have(*files):
        source = "synthetic rewards" if samples is None else Path(samples).name
        atomic_write_csv(files[0], per_sample)
        atomic_write_csv(files[1], by_category)
        title = f"Advantage alignment ({source}, {len(per_sample)} samples, alpha={config.advantage.alpha:g})"
        save_figure(plot_advantage_alignment(per_sample, by_category, stats, title), files[2])
    metrics = {f"share_{k}": v for k, v in stats.items()}
    for row in by_category.dropna(subset=["linear"]).itertuples():
        metrics[f"mean_adv_linear_{row.category}"] = float(row.linear)
        metrics[f"mean_adv_sars_{row.category}"] = float(row.sars)
    return [str(f) for f in files], metrics


@task(retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def log_analysis(
    config: AnalysisConfig, key: str, files: list[str], metrics: dict[str, float], samples: str | None
) -> str:
    """One MLflow run in experiment ``analysis`` with params, tags, metrics and every file; returns its id."""
    tags = {
        "profile": config.profile,
        "config_hash": key,
        "samples": "synthetic" if samples is None else Path(samples).name,
        **prefect_run_tags(),
    }
    with mlflow_run(EXPERIMENT, run_name=config.name, tags=tags) as run:
        run.log_params(flatten(config))
        run.log_metrics(metrics)
        for path in files:
            run.log_artifact(path, "figures" if path.endswith(".png") else "tables")
    return run.run_id
