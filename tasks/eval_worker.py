"""One process of a sharded evaluation: ``accelerate launch ... -m tasks.eval_worker SPEC.json``.

Started by :func:`tasks.evaluation.evaluate_model` when ``evaluation.processes`` > 1; reads the
:class:`~tasks.evaluation.EvalSpec` and runs :func:`~tasks.evaluation.run_evaluation` as its rank.
"""

from __future__ import annotations

import json
import sys

from cgrpo_core.training.distributed import init_distributed
from tasks.evaluation import EvalSpec, run_evaluation
from tasks.workers import reporting_errors


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m tasks.eval_worker SPEC.json (written by tasks.evaluation)")
    with open(args[0], encoding="utf-8") as handle:
        data = json.load(handle)
    data["bench"] = tuple(data["bench"])
    with reporting_errors():
        run_evaluation(EvalSpec(**data), init_distributed())


if __name__ == "__main__":
    main()
