"""Every table row as data: ids, shared models, rows that are not run and why."""

from __future__ import annotations

import pytest

from cgrpo_core.config import experiment_config
from cgrpo_core.rows import ROWS, get_row, not_run_reason, row_config, rows_of_table, same_model
from cgrpo_core.schema import config_hash

ISSUE_EXAMPLES = [
    "table-2/uno-base",
    "table-2/sft",
    "table-2/rpo",
    "table-2/naive-1-1",
    "table-2/naive-1-1.5",
    "table-2/customized-grpo",
    "table-2/wo-synergy",
    "table-2/wo-tdw",
    "table-3/min",
    "table-4/w0.9-0.1",
    "table-5/alpha0.8-inverted",
    "table-7/clip-i-clip-t",
]


def test_every_paper_row_has_an_id():
    assert set(ISSUE_EXAMPLES) <= set(ROWS)
    # the paper's row counts: Table 1 11, Table 2 8, Table 3 6, Table 4 5, Table 5 10, Table 7 7
    assert [len(rows_of_table(t)) for t in (1, 2, 3, 4, 5, 7)] == [11, 8, 6, 5, 10, 7]


def test_a_row_in_several_tables_is_one_model():
    groups = {tuple(g) for g in same_model("test")}
    default = next(g for g in groups if "table-2/customized-grpo" in g)
    assert set(default) == {
        "table-1/customized-grpo",
        "table-2/customized-grpo",
        "table-3/tanh",
        "table-4/w0.7-0.3",
        "table-5/alpha0.5-standard",
        "table-7/dino-seg-hps-v3",
    }
    assert any({"table-2/naive-1-1.5", "table-3/naive-grpo"} <= set(g) for g in groups)
    assert any({"table-2/wo-synergy", "table-5/alpha0.0-standard"} <= set(g) for g in groups)
    assert len(groups) == 28  # 24 trained rows, the untrained base and three VLM judges


def test_row_configs_carry_the_readings_the_module_states():
    naive = row_config(get_row("table-2/naive-1-1.5"), "paper")
    assert naive.grpo.advantage.method == "linear" and naive.grpo.tdw.schedule == "static"
    assert naive.grpo.tdw.w_max == naive.grpo.tdw.w_min == 0.6  # 1 : 1.5 -> 1.5 / 2.5
    wo_tdw = row_config(get_row("table-2/wo-tdw"), "paper")
    assert wo_tdw.grpo.advantage.method == "sars" and wo_tdw.grpo.tdw.w_max == 0.5
    inverted = row_config(get_row("table-5/alpha0.8-inverted"), "paper")
    assert inverted.grpo.tdw.schedule == "inverted" and inverted.grpo.advantage.alpha == 0.8
    assert row_config(get_row("table-7/dino-clip-t"), "paper").rewards.prompt == "clip_t"
    default = row_config(get_row("table-2/customized-grpo"), "toy")
    assert config_hash(default) == config_hash(experiment_config("toy"))  # the name is a label
    assert default.name == "table-2/customized-grpo"
    assert row_config(get_row("table-2/sft"), "toy", changes={"seed": 4}).seed == 4


def test_rows_that_are_not_run_say_why(monkeypatch):
    assert not_run_reason(get_row("table-1/dreambooth")) == "reported, not rerun"
    with pytest.raises(ValueError, match="reported, not rerun"):
        row_config(get_row("table-1/dreambooth"))
    monkeypatch.delenv("CGRPO_VLM_BASE_URL", raising=False)
    assert not_run_reason(get_row("table-7/gpt-4o")) == "not run: no judge endpoint"
    monkeypatch.setenv("CGRPO_VLM_BASE_URL", "http://localhost:8000/v1")
    assert not_run_reason(get_row("table-7/gpt-4o")) is None
    assert not_run_reason(get_row("table-2/sft")) is None
    with pytest.raises(KeyError, match="table-2/wo-tdw"):
        get_row("table-2/wo_tdw")


def test_the_readme_lists_every_row():
    from tests.conftest import REPO_ROOT

    readme = " ".join((REPO_ROOT / "README.md").read_text(encoding="utf-8").split())
    missing = [row.id for row in ROWS.values() if not row.reported_only and f"`{row.id}`" not in readme]
    assert not missing, f"add these rows to the README's list: {missing}"
    assert all(row.label in readme for row in ROWS.values() if row.reported_only)
