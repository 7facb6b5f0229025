"""Flow ``analysis``: the paper's Fig. 3 (SARS cross-section), Fig. 6 (TDW schedules) and Fig. 7
(advantage alignment of a set of reward samples), saved as PNG + CSV and logged to one MLflow run.

    python -m flows.analysis                       # synthetic reward samples
    python -m flows.analysis --samples rewards.csv  # columns: group, reward_id, reward_prompt
"""

from __future__ import annotations

import argparse

from prefect import flow

from cgrpo_core.config import AnalysisConfig
from tasks.analysis import (
    analysis_key,
    log_analysis,
    render_advantage_alignment,
    render_sars_cross_section,
    render_tdw_schedules,
)

DEFAULT_CONFIG = AnalysisConfig()  # frozen, so sharing one default instance is safe


@flow(name="analysis", log_prints=True)
def analysis(config: AnalysisConfig = DEFAULT_CONFIG, samples: str | None = None) -> str:
    """Render and log the analysis figures; returns the MLflow run id."""
    key, out_dir = analysis_key(config, samples)
    files = render_sars_cross_section(config, out_dir) + render_tdw_schedules(config, out_dir)
    alignment_files, metrics = render_advantage_alignment(config, samples, out_dir)
    run_id = log_analysis(config, key, files + alignment_files, metrics, samples)
    print(f"analysis {key}: figures in {out_dir}; MLflow run {run_id} (experiment 'analysis')")
    return run_id


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", help="reward samples (.csv or .parquet); synthetic when omitted")
    parser.add_argument("--profile", default="toy", choices=["paper", "toy", "test"])
    parser.add_argument("--alpha", type=float, default=AnalysisConfig().advantage.alpha, help="SARS alpha")
    args = parser.parse_args(argv)
    config = AnalysisConfig(profile=args.profile, advantage={"alpha": args.alpha})
    return analysis(config, args.samples)


if __name__ == "__main__":
    main()
