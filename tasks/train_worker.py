"""One process of a data-parallel training run: ``torchrun ... -m tasks.train_worker SPEC.json``.

Started by :func:`tasks.training.train_model` when ``run.processes`` > 1; reads the
:class:`~tasks.training.TrainSpec` and runs :func:`~tasks.training.run_training` as its rank.
"""

from __future__ import annotations

import json
import sys

from cgrpo_core.training.distributed import init_distributed
from tasks.training import TrainSpec, run_training
from tasks.workers import reporting_errors


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m tasks.train_worker SPEC.json (written by tasks.training)")
    with open(args[0], encoding="utf-8") as handle:
        data = json.load(handle)
    data["bench"] = tuple(data["bench"]) if data.get("bench") else None
    with reporting_errors():
        run_training(TrainSpec(**data), init_distributed())


if __name__ == "__main__":
    main()
