"""Flow ``evaluate``: one table row's model on DreamBench (ToyBench in the toy profile), 4 images per item,
scored by DINO, CLIP-I, CLIP-T and HPSv3 under the pinned protocol, logged to MLflow.

    python -m flows.evaluate ROW [--profile toy|test|paper] [--preset ...] [--seed N]
                                 [--dreambench-root DIR] [--dry-run] [--set dotted.key=value ...]
    python -m flows.evaluate table-2/uno-base                       # the toy base model on ToyBench
    python -m flows.evaluate table-2/uno-base --profile paper --dreambench-root ~/dreambooth/dataset --dry-run

The row's model is trained first when its trained result is missing (``flows.train``; the base model
trains nothing). ``--seed`` is the row's training seed; the images' noise is ``evaluation.seed``, the same
for every row, so two rows' images are paired. ``--dry-run`` plans the images (``images.parquet``,
``protocol.json``) without weights. Paper profile: ``--dreambench-root`` (or ``--set
evaluation.benchmark.root=DIR``) is DreamBench's ``dataset/`` folder.

The last line printed is the result folder: ``images.parquet`` (the plan), ``images/``, ``scores.parquet``
(per image), ``summary.csv`` (mean and 95% CI per metric), ``summary_groups.csv``, ``metadata.parquet``
(``datasets.load_dataset("imagefolder", data_dir=FOLDER)``), ``figures/samples.png``. A killed run, run
again, continues: finished images are neither generated nor scored again.
"""

from __future__ import annotations

import argparse

from prefect import flow

from cgrpo_core.config import ExperimentConfig
from cgrpo_core.rows import get_row, row_config
from cgrpo_core.store import ResultStore
from flows.cli import add_row_arguments, row_changes
from flows.train import resolve_row
from tasks.evaluation import eval_key, evaluate_model, plan_evaluation
from tasks.training import model_key, train_model

NO_BENCHMARK = (
    "no benchmark: set --dreambench-root DIR (DreamBench's dataset/ folder; the README's "
    "'The paper profile's data' says how to download it)"
)


@flow(name="evaluate", log_prints=True)
def evaluate_row(row_id: str, config: ExperimentConfig, dry_run: bool = False) -> str:
    """Evaluate ``row_id`` (training it first if needed); with ``dry_run`` only plan its images."""
    if dry_run:
        inputs = resolve_row(row_id, config, needs_syncd=False)
        if inputs.bench is None:
            raise ValueError(NO_BENCHMARK)
        folder = plan_evaluation(row_id, inputs.config, inputs.bench)
        print(f"{row_id}: planned {folder}")
        return folder
    folder, _ = row_results(row_id, config, run=True)
    print(f"{row_id}: {folder}")
    return folder


def row_results(row_id: str, config: ExperimentConfig, run: bool) -> tuple[str | None, str | None]:
    """(evaluation folder, training folder) of ``row_id``: made as needed with ``run``, else only found
    (None where missing; the base model has no training folder). Inside a flow."""
    base = config.method == "base"
    inputs = resolve_row(row_id, config, needs_syncd=not base)
    if inputs.bench is None:
        raise ValueError(NO_BENCHMARK)
    resolved, store = inputs.config, ResultStore()
    key = model_key(resolved, None if base else inputs.train_json)
    if base:
        trained = None
    elif run:
        trained = train_model(row_id, resolved, inputs.train_json, inputs.image_root, inputs.bench)
    else:
        trained = str(store.path("trained", key)) if store.exists("trained", key) else None
    if run:
        return evaluate_model(row_id, resolved, key, trained, inputs.bench), trained
    evaluated = eval_key(resolved, key, inputs.bench)
    found = str(store.path("evaluated", evaluated)) if store.exists("evaluated", evaluated) else None
    return found, trained


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "row", help="table-N/<row>, e.g. table-2/customized-grpo (python -m flows.train --list)"
    )
    add_row_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="only plan the images (no weights)")
    args = parser.parse_args(argv)
    try:
        config = row_config(get_row(args.row), args.profile, args.preset, row_changes(args))
    except (KeyError, ValueError) as err:
        raise SystemExit(f"cannot evaluate {args.row}: {err}") from None
    try:
        folder = evaluate_row(args.row, config, args.dry_run)
    except (ValueError, FileNotFoundError) as err:  # bad settings or inputs, named by the tasks
        raise SystemExit(f"cannot evaluate {args.row}: {err}") from None
    print(folder)
    return folder


if __name__ == "__main__":
    main()
