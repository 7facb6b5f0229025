"""Flow ``analysis``: the paper's Fig. 3 (SARS cross-section), Fig. 6 (TDW schedules) and Fig. 7
(advantage alignment of a set of reward samples) for what a preset trains, saved as PNG + CSV and logged to
one MLflow run (experiment ``analysis``). The last line printed is the result folder.

    python -m flows.analysis                                  # the paper preset, synthetic reward samples
    python -m flows.analysis --preset released_code           # the released code's alpha and TDW
    python -m flows.analysis --samples rewards.csv            # columns: group, reward_id, reward_prompt
"""

from __future__ import annotations

import argparse

from prefect import flow

from cgrpo_core.analysis import AnalysisConfig, analysis_config
from cgrpo_core.config import experiment_config
from flows.cli import add_experiment_arguments, experiment_from_args
from tasks.analysis import log_analysis, render_figures


@flow(name="analysis", log_prints=True)
def analysis(config: AnalysisConfig | None = None, samples: str | None = None) -> str:
    """Render and log the analysis figures of ``config`` (default: the paper preset); their folder."""
    config = config or analysis_config(experiment_config("toy"))
    folder = render_figures(config, samples)
    run_id = log_analysis(config, folder, samples)
    print(f"analysis of {config.preset}: MLflow run {run_id} (experiment 'analysis')")
    return folder


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_experiment_arguments(parser)
    parser.add_argument("--samples", help="reward samples (.csv or .parquet); synthetic when omitted")
    args = parser.parse_args(argv)
    folder = analysis(analysis_config(experiment_from_args(args), args.preset), args.samples)
    print(folder)
    return folder


if __name__ == "__main__":
    main()
