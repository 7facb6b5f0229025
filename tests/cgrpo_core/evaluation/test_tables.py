"""The paper's tables with measured rows: the row-to-paper mapping, diffs, markdown and files."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cgrpo_core.evaluation.tables import (
    COMPUTE_PAPER_ROWS,
    NO_PAPER_NUMBER,
    QUALITY_TABLES,
    build_table,
    compact_table,
    compute_table,
    paper_table,
    paper_values,
    table_markdown,
    table_metrics,
    write_table,
)
from cgrpo_core.rows import get_row, not_run_reason, rows_of_table
from tests.cgrpo_core.evaluation.test_aggregate import MODEL_LABELS

DINO, HPS = "DINO (facebook/dino-vits16)", "HPS-v3 (toy HPSv3)"


@pytest.mark.parametrize("table", QUALITY_TABLES)
def test_every_row_finds_its_paper_numbers(table):
    metrics = table_metrics(table)
    for row in rows_of_table(table):
        values = paper_values(row)
        expected = {m for m in metrics if (row.id, m) not in NO_PAPER_NUMBER}
        assert set(values) == expected, row.id
    # each paper row is used: the registry has exactly the paper's rows
    assert len(rows_of_table(table)) == len(paper_table(table))


def test_paper_values_by_hand():
    assert paper_values(get_row("table-4/w0.9-0.1"))["dino"] == 0.821
    assert paper_values(get_row("table-5/alpha0.8-standard")) == {"dino": 0.835, "hpsv3": 7.61}
    assert paper_values(get_row("table-5/alpha0.2-inverted")) == {"dino": 0.609, "hpsv3": 5.62}
    assert paper_values(get_row("table-2/naive-1-1.5")) == {
        "dino": 0.801,
        "clip_i": 0.842,
        "clip_t": 0.298,
        "hpsv3": 7.56,
    }
    assert paper_values(get_row("table-3/harmonic"))["hpsv3"] == 8.22
    assert paper_values(get_row("table-7/clip-i-clip-t"))["clip_t"] == 0.213
    assert paper_values(get_row("table-1/textual-inversion")) == {
        "dino": 0.569,
        "clip_i": 0.780,
        "clip_t": 0.255,
    }
    assert table_metrics(5) == ["dino", "hpsv3"]


def _reasons(table):
    return {row.id: not_run_reason(row) or "not evaluated yet" for row in rows_of_table(table)}


def test_build_table_puts_measured_beside_paper():
    measured = {
        "table-5/alpha0.8-standard": {"dino": 0.800, "hpsv3": 7.70},
        "table-5/alpha0.0-inverted": {"dino": 0.700},  # no HPS-v3 score
        "table-2/sft": {"dino": 0.5},  # another table's row: ignored
    }
    df = build_table(5, measured, MODEL_LABELS, _reasons(5))
    assert list(df.row) == [r.id for r in rows_of_table(5)]
    assert list(df.columns) == [
        "row",
        "method",
        f"{DINO} measured",
        f"{DINO} paper",
        f"{DINO} diff",
        f"{HPS} measured",
        f"{HPS} paper",
        f"{HPS} diff",
        "status",
    ]
    row = df.set_index("row").loc["table-5/alpha0.8-standard"]
    assert row[f"{DINO} diff"] == pytest.approx(0.800 - 0.835)
    assert row[f"{HPS} diff"] == pytest.approx(7.70 - 7.61)
    assert row.status == "measured"
    inverted = df.set_index("row").loc["table-5/alpha0.0-inverted"]
    assert math.isnan(inverted[f"{HPS} measured"]) and math.isnan(inverted[f"{HPS} diff"])
    assert inverted[f"{HPS} paper"] == 5.65
    assert df.set_index("row").loc["table-5/alpha1.0-standard"].status == "not evaluated yet"


def test_reasons_are_shown_and_a_row_without_one_raises(monkeypatch):
    monkeypatch.delenv("CGRPO_VLM_BASE_URL", raising=False)
    df = build_table(1, {}, MODEL_LABELS, _reasons(1)).set_index("row")
    assert df.loc["table-1/dreambooth"].status == "reported, not rerun"
    assert math.isnan(df.loc["table-1/dreambooth", f"{HPS} paper"])  # blank in the paper
    assert build_table(7, {}, MODEL_LABELS, _reasons(7)).set_index("row").loc["table-7/gpt-4o"].status == (
        "not run: no judge endpoint"
    )
    reasons = _reasons(2)
    del reasons["table-2/wo-tdw"]
    with pytest.raises(ValueError, match="table-2/wo-tdw"):
        build_table(2, {}, MODEL_LABELS, reasons)
    with pytest.raises(ValueError, match="Table 8"):
        build_table(8, {}, MODEL_LABELS)


def test_markdown_formats_the_numbers():
    measured = {"table-4/w0.9-0.1": {"dino": 0.8334, "clip_i": 0.8601, "clip_t": 0.2901, "hpsv3": 7.2}}
    df = build_table(4, measured, MODEL_LABELS, _reasons(4))
    text = table_markdown(df, "Table 4 (toy)", {"profile": "toy", "images per item": "4"})
    lines = text.splitlines()
    assert lines[0] == "## Table 4 (toy)"
    header = next(line for line in lines if line.startswith("| row"))
    assert f"{DINO} measured" in header and "status" in header
    row = next(line for line in lines if "table-4/w0.9-0.1" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:5] == ["0.833", "0.821", "+0.012"]
    assert cells[-4:] == ["7.20", "7.27", "-0.07", "measured"]
    blank = next(line for line in lines if "table-4/w1.0-0.0" in line)
    assert [c.strip() for c in blank.strip("|").split("|")][2:5] == ["", "0.832", ""]
    assert lines[-2:] == ["- profile: toy", "- images per item: 4"]


def test_the_compact_view_puts_measured_ci_and_paper_in_one_cell():
    measured = {"table-4/w0.9-0.1": {"dino": 0.8334, "clip_i": 0.8601, "clip_t": 0.2901, "hpsv3": 7.2}}
    df = build_table(4, measured, MODEL_LABELS, _reasons(4))
    compact = compact_table(df, {"table-4/w0.9-0.1": {DINO: (0.81, 0.85)}}).set_index("method")
    assert compact.loc["0.9 / 0.1", f"{DINO}: measured / paper"] == "0.833 [0.810, 0.850] / 0.821"
    assert compact.loc["0.9 / 0.1", f"{HPS}: measured / paper"] == "7.20 / 7.27"  # no interval given
    assert compact.loc["1.0 / 0.0", f"{DINO}: measured / paper"] == "- / 0.832"
    assert compact.loc["1.0 / 0.0", "status"] == "not evaluated yet"


def test_written_files_are_complete(tmp_path):
    measured = {"table-3/min": {"dino": 0.7, "clip_i": 0.8, "clip_t": 0.3, "hpsv3": 6.0}}
    df = build_table(3, measured, MODEL_LABELS, _reasons(3))
    csv_path, md_path = write_table(df, tmp_path / "tables", "table3", "Table 3", {"seed": "0"})
    pd.testing.assert_frame_equal(pd.read_csv(csv_path, keep_default_na=False, na_values=[""]), df)
    assert md_path.read_text(encoding="utf-8") == table_markdown(df, "Table 3", {"seed": "0"})
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == ["table3.csv", "table3.md"]


def test_compute_table_from_histories():
    sft = [{"seconds/step": 2.0, "loss": 1.0}, {"seconds/step": 4.0}, {"seconds/step": 3.0}]
    grpo = [
        {"seconds/step": 30.0, "seconds/sampling": 10.0, "memory/peak_mb": 900.0},
        {"seconds/step": 42.0, "seconds/sampling": 14.0, "memory/peak_mb": 1000.0},
    ]
    df = compute_table({"table-2/sft": sft, "table-2/customized-grpo": grpo}).set_index("row")
    assert df.loc["table-2/sft", "steps"] == 3
    assert df.loc["table-2/sft", "iteration time (s) measured"] == pytest.approx(3.0)
    assert df.loc["table-2/sft", "training time (h) measured"] == pytest.approx(9.0 / 3600)
    assert math.isnan(df.loc["table-2/sft", "sampling time (s) measured"])
    assert math.isnan(df.loc["table-2/sft", "peak memory (MB)"])
    assert df.loc["table-2/sft", "iteration time (s) paper"] == 2.32
    assert df.loc["table-2/sft", "paper row"] == "UNO (Base) (SFT)"
    assert df.loc["table-2/customized-grpo", "iteration time (s) measured"] == pytest.approx(36.0)
    assert df.loc["table-2/customized-grpo", "training time (h) measured"] == pytest.approx(72.0 / 3600)
    assert df.loc["table-2/customized-grpo", "sampling time (s) measured"] == pytest.approx(12.0)
    assert df.loc["table-2/customized-grpo", "peak memory (MB)"] == 1000.0
    assert df.loc["table-2/customized-grpo", "training time (h) paper"] == 80
    with pytest.raises(ValueError, match="table-2/rpo"):
        compute_table({"table-2/rpo": []})


def test_table8_rows_are_the_models_the_paper_names():
    paper = paper_table(8).set_index("method")
    for row_id, (method, paradigm) in COMPUTE_PAPER_ROWS.items():
        assert paper.loc[method, "training_paradigm"] == paradigm
        # the paper's Table 8 quality numbers are those of the row in its own table
        values = paper_values(get_row(row_id))
        assert (values["dino"], values["hpsv3"]) == (paper.loc[method, "DINO"], paper.loc[method, "HPS-v3"])
    assert "table-2/naive-1-1" not in COMPUTE_PAPER_ROWS  # Table 8's Naive-GRPO is the 1:1.5 weighting
