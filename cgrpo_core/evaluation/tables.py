"""The paper's Tables 1-5 and 7 (quality) and 8 (compute), each measured row beside the paper's number.

The paper's numbers are transcribed in ``data/paper_tables/`` (:data:`PAPER_TABLES`). A registry row
(:mod:`cgrpo_core.rows`) finds its paper row by:

- Tables 1, 2, 3 and 7: its ``label``, equal to the CSV's first column. Every label matches as
  written (Table 3 has "Harmonic Mean" and "Tanh(A_id * A_prompt)", Table 2 "Naive GRPO (1:1.5)"), so
  there is no alias list; :func:`paper_values` raises if a label stops matching;
- Table 4: ``(w_max, w_min)`` from the row's changes;
- Table 5: ``(alpha, schedule)``, where the row's ``grpo.tdw.schedule`` "paper" is the CSV's "standard".

Every row of those tables has a paper number for each of the table's metrics, except a blank cell: the
paper gives no HPS-v3 for Textual Inversion, DreamBooth and BLIP-Diffusion (Table 1's reported-only
baselines; :data:`NO_PAPER_NUMBER`).

:func:`build_table` lists every row of a table in registry order: the measured mean, the paper's value and
their difference for each metric the paper's table has (Table 5: DINO and HPS-v3 only), and a ``status``:
"measured", or why the row was not (:func:`cgrpo_core.rows.not_run_reason`, "not evaluated yet", ...).
Table 8 (:func:`compute_table`) comes from the trainers' step metrics instead (``history.json``).

:func:`table_markdown` writes a table for GitHub by hand (pandas' ``to_markdown`` needs ``tabulate``);
:func:`write_table` writes its CSV and markdown atomically.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cgrpo_core.data.dreambench import REPO_DATA
from cgrpo_core.evaluation.aggregate import METRIC_NAMES, metric_label
from cgrpo_core.rows import Row, get_row, rows_of_table
from cgrpo_core.store import atomic_write_csv, atomic_write_text

__all__ = [
    "COMPUTE_PAPER_ROWS",
    "NO_PAPER_NUMBER",
    "PAPER_TABLES",
    "QUALITY_TABLES",
    "build_table",
    "compact_table",
    "compute_table",
    "paper_table",
    "paper_values",
    "table_markdown",
    "table_metrics",
    "write_table",
]

PAPER_DIR = REPO_DATA / "paper_tables"
PAPER_TABLES = {
    1: "table1_main.csv",
    2: "table2_ablation.csv",
    3: "table3_synergy_term.csv",
    4: "table4_dynamic_weight.csv",
    5: "table5_alpha_x_tdw.csv",
    6: "table6_reward_model_human_alignment.csv",
    7: "table7_reward_combinations.csv",
    8: "table8_compute.csv",
}
QUALITY_TABLES = (1, 2, 3, 4, 5, 7)  # the tables of registry rows scored on DreamBench
COLUMN_METRIC = {name: key for key, name in METRIC_NAMES.items()}  # "CLIP-I" -> "clip_i"
SCHEDULE_NAMES = {"paper": "standard", "inverted": "inverted"}  # grpo.tdw.schedule -> Table 5's name
# (row, metric) cells the paper leaves blank
NO_PAPER_NUMBER = {
    ("table-1/textual-inversion", "hpsv3"),
    ("table-1/dreambooth", "hpsv3"),
    ("table-1/blip-diffusion", "hpsv3"),
}
MEASURED = "measured"

# Table 8's rows (method, training paradigm) and the registry rows that train the same model. The paper's
# "UNO (Base)" row with paradigm SFT is Table 2's SFT (its DINO 0.762 / HPS-v3 7.43 are SFT's), and its
# "Naive-GRPO" is the 1:1.5 weighting (DINO 0.801 / HPS-v3 7.56, Table 2's "Naive GRPO (1:1.5)" and
# Table 3's "Naive GRPO"), not the 1:1 one.
COMPUTE_PAPER_ROWS = {
    "table-2/sft": ("UNO (Base)", "SFT"),
    "table-2/naive-1-1.5": ("Naive-GRPO", "Online RL"),
    "table-3/naive-grpo": ("Naive-GRPO", "Online RL"),
    **{
        row: ("Customized-GRPO", "Online RL + SARS + TDW")
        for row in (
            "table-1/customized-grpo",
            "table-2/customized-grpo",
            "table-3/tanh",
            "table-4/w0.7-0.3",
            "table-5/alpha0.5-standard",
            "table-7/dino-seg-hps-v3",
        )
    },
}
COMPUTE_COLUMNS = {  # Table 8 column -> (step-metric key, its column here)
    "iteration_time_s": ("seconds/step", "iteration time (s)"),
    "training_time_h": ("seconds/step", "training time (h)"),
    "sampling_time_s": ("seconds/sampling", "sampling time (s)"),
}


@functools.cache
def _read_paper_table(table: int) -> pd.DataFrame:
    if table not in PAPER_TABLES:
        raise ValueError(f"the paper has no table {table} here; known: {sorted(PAPER_TABLES)}")
    return pd.read_csv(PAPER_DIR / PAPER_TABLES[table])


def paper_table(table: int) -> pd.DataFrame:
    """The paper's Table ``table`` as transcribed in ``data/paper_tables/`` (a copy)."""
    return _read_paper_table(table).copy()


def table_metrics(table: int) -> list[str]:
    """The metric keys of the paper's Table ``table``, in its column order (Table 5: dino, hpsv3)."""
    return [COLUMN_METRIC[c] for c in paper_table(table).columns if c in COLUMN_METRIC]


def _paper_row(row: Row) -> pd.Series:
    table = paper_table(row.table)
    if row.table in (1, 2, 3, 7):
        found = table[table.iloc[:, 0] == row.label]
        key = f"label {row.label!r}"
    elif row.table == 4:
        w_max, w_min = row.changes["grpo.tdw.w_max"], row.changes["grpo.tdw.w_min"]
        found = table[np.isclose(table["w_max"], w_max) & np.isclose(table["w_min"], w_min)]
        key = f"w_max {w_max}, w_min {w_min}"
    elif row.table == 5:
        alpha, schedule = row.changes["grpo.advantage.alpha"], row.changes["grpo.tdw.schedule"]
        name = SCHEDULE_NAMES.get(schedule, schedule)
        found = table[np.isclose(table["alpha"], alpha) & (table["schedule"] == name)]
        key = f"alpha {alpha}, schedule {name!r}"
    else:
        raise ValueError(f"{row.id}: only Tables {QUALITY_TABLES} have per-row quality numbers")
    if len(found) != 1:
        raise ValueError(
            f"{row.id}: {len(found)} rows of {PAPER_TABLES[row.table]} match {key} (want exactly one); "
            "fix the row's label or changes in cgrpo_core/rows.py or the CSV"
        )
    return found.iloc[0]


def paper_values(row: Row) -> dict[str, float]:
    """The paper's numbers for ``row`` (metric key -> value); blank cells are left out."""
    found = _paper_row(row)
    return {
        key: float(found[name])
        for name, key in COLUMN_METRIC.items()
        if name in found.index and not pd.isna(found[name])
    }


def _diff(measured: float, paper: float) -> float:
    return measured - paper if not (math.isnan(measured) or math.isnan(paper)) else math.nan


def build_table(
    table: int,
    measured: Mapping[str, Mapping[str, float]],
    model_labels: Mapping[str, str],
    reasons: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Every row of Table ``table`` (registry order) with ``<label> measured / paper / diff`` for each of
    the paper table's metrics and a ``status``.

    ``measured``: row id -> {metric: mean} of the rows evaluated (other tables' rows are ignored);
    ``reasons``: row id -> why a row was not. A measured row's status is "measured" (a reason given for
    it too is ignored); a row with neither raises a ValueError. The diff is measured - paper, NaN when
    either is missing."""
    if table not in QUALITY_TABLES:
        raise ValueError(f"build_table makes Tables {QUALITY_TABLES}; Table 8 is compute_table()")
    reasons = reasons or {}
    metrics = table_metrics(table)
    missing = [m for m in metrics if m not in model_labels]
    if missing:
        raise ValueError(f"Table {table}: model_labels has no entry for {missing}")
    records = []
    for row in rows_of_table(table):
        if row.id in measured:
            values, status = measured[row.id], MEASURED
        elif row.id in reasons:
            values, status = {}, reasons[row.id]
        else:
            raise ValueError(
                f"{row.id} ({row.label}) has neither a measurement nor a reason: evaluate it or give a "
                "reason (cgrpo_core.rows.not_run_reason, 'not evaluated yet')"
            )
        paper = paper_values(row)
        record: dict[str, object] = {"row": row.id, "method": row.label}
        for metric in metrics:
            label = metric_label(metric, model_labels[metric])
            ours = float(values.get(metric, math.nan))
            theirs = paper.get(metric, math.nan)
            record[f"{label} measured"] = ours
            record[f"{label} paper"] = theirs
            record[f"{label} diff"] = _diff(ours, theirs)
        record["status"] = status
        records.append(record)
    return pd.DataFrame(records)


def _step_values(history: Sequence[Mapping[str, float]], key: str) -> np.ndarray:
    return np.array([float(step[key]) for step in history if key in step], dtype=float)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else math.nan


def compute_table(histories: Mapping[str, Sequence[Mapping[str, float]]]) -> pd.DataFrame:
    """Table 8 from the trainers' step metrics: ``histories`` maps a trained row id to its
    ``history.json`` (one metrics dict per optimiser step).

    Per row: ``steps``; the mean ``seconds/step`` (iteration time) and its sum in hours (training time);
    the mean ``seconds/sampling``; the largest ``memory/peak_mb``; each over the steps that logged the
    key, NaN if none did (SFT and RPO log no sampling time). Rows that train a model of the paper's
    Table 8 (:data:`COMPUTE_PAPER_ROWS`) carry its numbers in the ``... paper`` columns and its name in
    ``paper row``; the paper's run (8 A100s, full size) is not comparable in absolute terms, so there is
    no diff column."""
    if not histories:
        raise ValueError("give at least one trained row's history")
    paper = paper_table(8).set_index(["method", "training_paradigm"])
    records = []
    for row_id, history in histories.items():
        if not history:
            raise ValueError(f"{row_id}: the history is empty (no optimiser step logged)")
        step_seconds = _step_values(history, "seconds/step")
        memory = _step_values(history, "memory/peak_mb")
        ours = {
            "iteration_time_s": _mean(step_seconds),
            "training_time_h": float(step_seconds.sum() / 3600.0) if len(step_seconds) else math.nan,
            "sampling_time_s": _mean(_step_values(history, "seconds/sampling")),
        }
        match = COMPUTE_PAPER_ROWS.get(row_id)
        record: dict[str, object] = {"row": row_id, "method": get_row(row_id).label, "steps": len(history)}
        for column, (_, name) in COMPUTE_COLUMNS.items():
            record[f"{name} measured"] = ours[column]
            record[f"{name} paper"] = float(paper.loc[match, column]) if match else math.nan
        record["peak memory (MB)"] = float(memory.max()) if len(memory) else math.nan
        record["paper row"] = f"{match[0]} ({match[1]})" if match else ""
        records.append(record)
    return pd.DataFrame(records)


def _format(value: object, column: str) -> str:
    if isinstance(value, str):
        return value.replace("|", "\\|")
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return ""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    digits = 2 if "HPS-v3" in column else 3
    sign = "+" if column.endswith(" diff") else ""
    return f"{float(value):{sign}.{digits}f}"


def table_markdown(df: pd.DataFrame, title: str, protocol: Mapping[str, str] | None = None) -> str:
    """A GitHub markdown table under ``## title``: numbers to 3 decimals (HPS-v3 columns to 2), signed
    diffs (``+0.012``), blanks for NaN, numeric columns right-aligned; then ``- key: value`` lines of
    ``protocol`` (how the numbers were measured), if given."""
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df]
    lines = [f"## {title}", ""]
    lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in df.columns) + " |")
    lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
    for values in df.itertuples(index=False):
        cells = [_format(v, str(c)) for v, c in zip(values, df.columns, strict=True)]
        lines.append("| " + " | ".join(cells) + " |")
    if protocol:
        lines.append("")
        lines += [f"- {key}: {value}" for key, value in protocol.items()]
    return "\n".join(lines) + "\n"


def compact_table(
    df: pd.DataFrame, intervals: Mapping[str, Mapping[str, tuple[float, float]]] | None = None
) -> pd.DataFrame:
    """A narrow view of a :func:`build_table` frame for reading: ``method``, then one column per metric
    label holding "measured [95% CI] / paper" (CI from ``intervals``: row id -> label -> (low, high), if
    given), then ``status``."""
    labels = [c.removesuffix(" measured") for c in df.columns if c.endswith(" measured")]
    out = pd.DataFrame({"method": df["method"]})
    for label in labels:
        cells = []
        for row, measured, paper in zip(
            df["row"], df[f"{label} measured"], df[f"{label} paper"], strict=True
        ):
            text = _format(measured, label)
            low_high = (intervals or {}).get(row, {}).get(label)
            if text and low_high is not None:
                text += f" [{_format(low_high[0], label)}, {_format(low_high[1], label)}]"
            cells.append(f"{text or '-'} / {_format(paper, label) or '-'}")
        out[f"{label}: measured / paper"] = cells
    out["status"] = df["status"]
    return out


def write_table(
    df: pd.DataFrame,
    folder: str | Path,
    name: str,
    title: str,
    protocol: Mapping[str, str] | None = None,
) -> tuple[Path, Path]:
    """Write ``<folder>/<name>.csv`` and ``<name>.md`` (:func:`table_markdown`), each atomically."""
    folder = Path(folder)
    csv_path = atomic_write_csv(folder / f"{name}.csv", df)
    md_path = atomic_write_text(folder / f"{name}.md", table_markdown(df, title, protocol))
    return csv_path, md_path
