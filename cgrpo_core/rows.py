"""Every row of the paper's Tables 1-5 and 7 as data: ``table-N/<row>`` -> dotted changes of the default
preset (Customized-GRPO as appendix A describes it).

A row is trained by ``python -m flows.train ROW``: the preset, then the profile's sizes, then the row's
changes, then the user's ``--set``. Rows that share a model share its config, so they share its training
key and the store trains it once: Customized-GRPO is in Tables 1-5 and 7 (:func:`same_model` groups
them), Table 3's "Naive GRPO" is Table 2's 1:1.5, Table 2's "w/o Synergy" is Table 5's alpha 0 (standard
TDW), Table 5's alpha 0.5 (standard) and Table 4's 0.7/0.3 are the default.

Rows that are not trained here carry a reason instead of changes: Table 1's external baselines
("reported, not rerun") and Table 7's VLM-judge rows when no judge endpoint is configured
(``$CGRPO_VLM_BASE_URL``; see :func:`not_run_reason`).

Readings where the paper is terse (each is a change of one row, easy to vary with ``--set``):

- naive GRPO "1:1.5" (identity : prompt) is the static prompt weight 1.5 / 2.5 = 0.6;
- "w/o TDW" is SARS with fixed 1:1 weights (section 4.3: "fixed 1:1 weights across all timesteps");
- "w/o Synergy Term" is the linear sum under TDW, i.e. SARS with alpha 0 (section 4.3, Table 5);
- Table 3's min, max and harmonic aggregations and Table 4's bounds keep the other defaults (TDW on).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from cgrpo_core.config import experiment_config
from cgrpo_core.rewards.config import table7_rewards
from cgrpo_core.schema import Profile, config_hash

__all__ = ["ROWS", "Row", "get_row", "not_run_reason", "row_config", "rows_of_table", "same_model"]

REPORTED_ONLY = "reported, not rerun"
NO_JUDGE = "not run: no judge endpoint"
JUDGE_ENV = "CGRPO_VLM_BASE_URL"


@dataclass(frozen=True)
class Row:
    """One table row: its id, the paper's label, and the changes that make its model (or why none)."""

    id: str
    label: str
    changes: dict[str, Any] = field(default_factory=dict)
    reported_only: bool = False  # Table 1's external baselines: the paper's numbers only
    needs_judge: bool = False  # Table 7's VLM rows: trained only with an OpenAI-compatible endpoint

    @property
    def table(self) -> int:
        return int(self.id.split("/")[0].removeprefix("table-"))


BASE = {"method": "base"}
NAIVE_1_1 = {
    "grpo.advantage.method": "linear",
    "grpo.tdw.schedule": "static",
    "grpo.tdw.w_max": 0.5,
    "grpo.tdw.w_min": 0.5,
}
NAIVE_1_15 = {**NAIVE_1_1, "grpo.tdw.w_max": 0.6, "grpo.tdw.w_min": 0.6}
WO_TDW = {"grpo.tdw.schedule": "static", "grpo.tdw.w_max": 0.5, "grpo.tdw.w_min": 0.5}
EXTERNAL = (
    "Textual Inversion",
    "DreamBooth",
    "BLIP-Diffusion",
    "ELITE",
    "SSR-Encoder",
    "OmniGen",
    "OminiControl",
    "FLUX.1 IP-Adapter",
)


def _slug(text: str) -> str:
    out = "".join(c.lower() if c.isalnum() or c == "." else "-" for c in text)
    return "-".join(part for part in out.split("-") if part)


def _rows() -> list[Row]:
    rows = [Row(f"table-1/{_slug(name)}", name, reported_only=True) for name in EXTERNAL]
    rows += [
        Row("table-1/uno-base", "UNO (Base)", BASE),
        Row("table-1/rpo", "UNO (RPO)", {"method": "rpo"}),
        Row("table-1/customized-grpo", "UNO (Customized-GRPO)"),
        Row("table-2/uno-base", "UNO (Base)", BASE),
        Row("table-2/sft", "SFT", {"method": "sft"}),
        Row("table-2/rpo", "RPO", {"method": "rpo"}),
        Row("table-2/naive-1-1", "Naive GRPO (1:1)", NAIVE_1_1),
        Row("table-2/naive-1-1.5", "Naive GRPO (1:1.5)", NAIVE_1_15),
        Row("table-2/customized-grpo", "Customized-GRPO"),
        Row("table-2/wo-synergy", "w/o Synergy Term", {"grpo.advantage.alpha": 0.0}),
        Row("table-2/wo-tdw", "w/o TDW", WO_TDW),
        Row("table-3/uno-base", "UNO (Base)", BASE),
        Row("table-3/naive-grpo", "Naive GRPO", NAIVE_1_15),
        Row("table-3/min", "Min(A_id; A_prompt)", {"grpo.advantage.method": "min"}),
        Row("table-3/max", "Max(A_id; A_prompt)", {"grpo.advantage.method": "max"}),
        Row("table-3/harmonic", "Harmonic Mean", {"grpo.advantage.method": "harmonic"}),
        Row("table-3/tanh", "Tanh(A_id * A_prompt)"),
    ]
    for w_max, w_min in ((1.0, 0.0), (0.9, 0.1), (0.8, 0.2), (0.7, 0.3), (0.6, 0.4)):
        changes = {"grpo.tdw.w_max": w_max, "grpo.tdw.w_min": w_min}
        rows.append(Row(f"table-4/w{w_max}-{w_min}", f"{w_max} / {w_min}", changes))
    for schedule, name in (("paper", "standard"), ("inverted", "inverted")):
        for alpha in (0.0, 0.2, 0.5, 0.8, 1.0):
            changes = {"grpo.advantage.alpha": alpha, "grpo.tdw.schedule": schedule}
            rows.append(Row(f"table-5/alpha{alpha}-{name}", f"alpha {alpha}, {name} TDW", changes))
    rows.append(Row("table-7/uno-base", "UNO (Base)", BASE))
    for label, rewards in table7_rewards().items():
        changes = {"rewards.id": rewards.id, "rewards.prompt": rewards.prompt}
        judge = rewards.id.startswith("vlm_judge")
        if judge:
            changes["rewards.models.vlm.model"] = rewards.models.vlm.model
        rows.append(Row(f"table-7/{_slug(label)}", label, changes, needs_judge=judge))
    return rows


ROWS: dict[str, Row] = {row.id: row for row in _rows()}


def get_row(row_id: str) -> Row:
    """The row ``row_id`` (``table-N/<row>``), or a KeyError that lists the table's rows."""
    if row_id in ROWS:
        return ROWS[row_id]
    table = row_id.split("/")[0]
    known = [r for r in ROWS if r.startswith(f"{table}/")] or sorted({r.split("/")[0] for r in ROWS})
    raise KeyError(f"unknown row {row_id!r}; known: {', '.join(known)}")


def rows_of_table(table: int) -> list[Row]:
    return [row for row in ROWS.values() if row.table == table]


def not_run_reason(row: Row) -> str | None:
    """Why ``row`` is not trained here (None: it is): an external baseline, or a judge row without an
    endpoint in ``$CGRPO_VLM_BASE_URL``."""
    if row.reported_only:
        return REPORTED_ONLY
    if row.needs_judge and not os.environ.get(JUDGE_ENV):
        return NO_JUDGE
    return None


def row_config(row: Row, profile: Profile = "toy", preset: str = "paper_default", changes=None):
    """The experiment config of ``row``: the preset at the profile's sizes, the row's changes, then
    ``changes`` (a user's ``--set``); its ``name`` is the row id."""
    if row.reported_only:
        raise ValueError(f"{row.id} ({row.label}) is {REPORTED_ONLY}: there is no model to train")
    return experiment_config(profile, preset, {**row.changes, "name": row.id, **(changes or {})})


def same_model(profile: Profile = "toy", preset: str = "paper_default") -> list[list[str]]:
    """The trained rows grouped by the model they train (equal config hashes): each group is trained
    once. The order is the registry's."""
    groups: dict[str, list[str]] = {}
    for row in ROWS.values():
        if not row.reported_only:
            groups.setdefault(config_hash(row_config(row, profile, preset)), []).append(row.id)
    return list(groups.values())
