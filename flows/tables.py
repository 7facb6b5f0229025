"""Flow ``table``: one of the paper's tables, each measured row beside the paper's number, logged to MLflow.

    python -m flows.tables TABLE [--profile toy|test|paper] [--preset ...] [--seed N] [--run]
                                 [--dreambench-root DIR] [--set dotted.key=value ...]
    python -m flows.tables 2                 # Table 2 from the rows evaluated so far (toy profile)
    python -m flows.tables 2 --run           # train and evaluate every missing row first
    python -m flows.tables 8                 # Table 8 (compute) from the trained rows' step times

TABLE is 1-5, 7 (quality: DINO, CLIP-I, CLIP-T, HPS-v3 beside the paper's) or 8 (compute). Without
``--run`` the table shows the rows whose evaluation exists (``python -m flows.evaluate ROW`` makes one) and
says "not evaluated yet" for the others; Table 1's external baselines are "reported, not rerun", Table 7's
VLM-judge rows "not run: no judge endpoint" without ``$CGRPO_VLM_BASE_URL``.

The last line printed is the table's folder (``outputs/tables/<profile>/table-N/``: ``table-N.csv``,
``table-N.md``, ``tradeoff.png``, ``curves.png``, ``rows.json``), logged to the MLflow experiment
``table-N`` (a parent run, a child run per row). ``python -m flows.reproduce table-N`` does the same with
seeds and a report.
"""

from __future__ import annotations

import argparse

from prefect import flow

from cgrpo_core.evaluation.tables import COMPUTE_PAPER_ROWS, QUALITY_TABLES
from cgrpo_core.rows import get_row, not_run_reason, row_config, rows_of_table
from flows.cli import add_row_arguments, row_changes
from flows.evaluate import row_results
from tasks.tables import write_paper_table

NOT_EVALUATED = "not evaluated yet"
NOT_TRAINED = "not trained yet"


@flow(name="table", log_prints=True)
def paper_table(
    table: int,
    profile: str = "toy",
    preset: str = "paper_default",
    changes: dict | None = None,
    run: bool = False,
) -> str:
    """Table ``table`` of the rows evaluated (or, with ``run``, of every row, trained and evaluated first)."""
    if table not in (*QUALITY_TABLES, 8):
        raise ValueError(f"no table {table}: choose one of {', '.join(map(str, (*QUALITY_TABLES, 8)))}")
    rows = (
        [get_row(r) for r in COMPUTE_PAPER_ROWS if r.startswith("table-2/")]
        if table == 8
        else rows_of_table(table)
    )
    evaluated, trained, reasons = {}, {}, {}
    rewards = None
    for row in rows:
        reason = not_run_reason(row)
        if reason is not None:
            reasons[row.id] = reason
            continue
        config = row_config(row, profile, preset, changes)
        rewards = rewards or (config.rewards.id, config.rewards.prompt)
        found, model = row_results(row.id, config, run=run and table != 8)
        if model is not None:
            trained[row.id] = model
        if found is not None and table != 8:
            evaluated[row.id] = found
        elif table == 8 and model is None:
            reasons[row.id] = NOT_TRAINED
        elif table != 8:
            reasons[row.id] = NOT_EVALUATED
    folder = write_paper_table(table, profile, evaluated, trained, reasons, rewards)
    print(f"table {table}: {len(evaluated) or len(trained)} rows measured, {len(reasons)} not: {folder}")
    return folder


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("table", type=int, help="1-5, 7 (quality) or 8 (compute)")
    add_row_arguments(parser)
    parser.add_argument("--run", action="store_true", help="train and evaluate the missing rows first")
    args = parser.parse_args(argv)
    try:
        folder = paper_table(args.table, args.profile, args.preset, row_changes(args), args.run)
    except (KeyError, ValueError, FileNotFoundError) as err:
        raise SystemExit(f"cannot build table {args.table}: {err}") from None
    print(folder)
    return folder


if __name__ == "__main__":
    main()
