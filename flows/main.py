"""The first stages of the toy profile (``./run.sh stages``), in order; the main job (``./run.sh``) is
``reproduce-paper/all`` (flows/reproduce.py), which runs these and every table.

1. ``analysis``: the paper's Fig. 3, 6 and 7 for the paper preset (experiment ``analysis``);
2. ``toy-zoo``: the toy world and every tiny model trained on it, checked (experiment ``toy-zoo``);
3. ``prepare-syncd``: the toy SynCD scored by the zoo's DINOv2 and aesthetic head, filtered into the
   training list (experiment ``data``);
4. ``prepare-dreambench``: ToyBench's 750 evaluation items (experiment ``data``);
5. ``evaluate``: the base model (``table-2/uno-base``) on ToyBench (the toy profile: 5 prompts per subject,
   600 images), scored by every metric
   (experiment ``evaluate``), and ``table``: Table 2 of the rows evaluated so far beside the paper's
   numbers (experiment ``table-2``; ``python -m flows.tables 2 --run`` trains and evaluates the rest).

Every result is addressed by content, so a rerun takes seconds. The trainers, the evaluation and the
``reproduce-paper`` deployments extend this job as they land.

    python -m flows.main                  # the toy profile (15-25 minutes on 2 cores the first time)
    python -m flows.main --profile test   # the tests' sizes (about a minute)
"""

from __future__ import annotations

import argparse
import sys

from prefect import flow

from cgrpo_core.analysis import analysis_config
from cgrpo_core.config import ExperimentConfig, experiment_config
from cgrpo_core.rows import get_row
from cgrpo_core.schema import override
from flows.analysis import analysis
from flows.cli import add_experiment_arguments, experiment_from_args
from flows.data import prepare_dreambench, prepare_syncd
from flows.evaluate import evaluate_row
from flows.tables import paper_table
from flows.zoo import PROFILES, toy_zoo
from tasks.tracking import tracking_uri


@flow(name="toy-profile", log_prints=True)
def toy_profile(config: ExperimentConfig | None = None) -> dict[str, str]:
    """Run the stages above; returns where their results are."""
    config = config or experiment_config("toy")
    figures = analysis(analysis_config(config))
    zoo = toy_zoo(config)
    filtered = prepare_syncd(config)
    items = prepare_dreambench(config)
    base = "table-2/uno-base"
    evaluation = evaluate_row(base, override(config, {**get_row(base).changes, "name": base}))
    table = paper_table(2, config.profile)
    return {
        "analysis": figures,
        **zoo,
        "train_json": f"{filtered}/train.json",
        "benchmark_items": items,
        "evaluation (uno-base)": evaluation,
        "table 2": table,
    }


def main(argv: list[str] | None = None) -> dict[str, str]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_experiment_arguments(parser, PROFILES)
    out = toy_profile(experiment_from_args(parser.parse_args(argv)))
    print(
        "\nDone. Results:\n"
        + "".join(f"  {name}: {value}\n" for name, value in out.items())
        + "MLflow experiments 'analysis', 'toy-zoo', 'data', 'evaluate' and 'table-2'. Browse them with:\n"
        f"  .venv/bin/mlflow ui --backend-store-uri {tracking_uri()}\n"
        "Reproduce a table or figure through a Prefect server: ./run.sh reproduce table-3 (README)\n"
    )
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
