"""The main job of the toy profile (``./run.sh``).

For now it is the analysis flow (Fig. 3, 6, 7); the whole toy-profile reproduction replaces it as the
trainers, the evaluation and the ``reproduce-paper`` deployments land.
"""

from __future__ import annotations

import sys

from flows.analysis import main as analysis_main
from tasks.tracking import tracking_uri


def main(argv: list[str] | None = None) -> None:
    run_id = analysis_main(["--profile", "toy", *(argv or [])])
    uri = tracking_uri()
    print(
        f"\nDone. MLflow run {run_id} in experiment 'analysis'. Browse it with:\n"
        f"  .venv/bin/mlflow ui --backend-store-uri {uri}\n"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
