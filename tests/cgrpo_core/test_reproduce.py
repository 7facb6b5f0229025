"""The reproduce-paper targets, the mean over seeds and the claims' verdicts, checked against hand
computations."""

from __future__ import annotations

import math

import pytest

from cgrpo_core.reproduce import (
    CLAIMS,
    TARGETS,
    Claim,
    Condition,
    combine_seeds,
    difference,
    evaluate_claim,
    expand_target,
    target_rows,
)
from cgrpo_core.rows import rows_of_table


def test_targets_cover_the_papers_tables_and_figures():
    assert list(TARGETS) == [
        "table-1",
        "table-2",
        "table-3",
        "table-4",
        "table-5",
        "table-7",
        "table-8",
        "figure-2",
        "figure-3",
        "figure-6",
        "figure-7",
    ]
    assert expand_target("all") == list(TARGETS.values())
    with pytest.raises(ValueError, match="table-6"):  # not a deployment: it comes from human answers
        expand_target("table-6")
    # Table 1's external baselines are not trained; its three UNO rows are
    assert [r.id for r in target_rows(TARGETS["table-1"])] == [
        "table-1/uno-base",
        "table-1/rpo",
        "table-1/customized-grpo",
    ]
    assert len(target_rows(TARGETS["table-5"])) == len(rows_of_table(5)) == 10
    assert [r.id for r in target_rows(TARGETS["figure-2"])] == [
        "table-2/naive-1-1",
        "table-2/naive-1-1.5",
        "table-2/customized-grpo",
    ]
    assert target_rows(TARGETS["figure-6"]) == []
    assert TARGETS["table-3"].evaluates and not TARGETS["table-8"].evaluates


def test_table_7_judge_rows_need_an_endpoint(monkeypatch):
    monkeypatch.delenv("CGRPO_VLM_BASE_URL", raising=False)
    without = {r.id for r in target_rows(TARGETS["table-7"])}
    monkeypatch.setenv("CGRPO_VLM_BASE_URL", "http://127.0.0.1:9/v1")
    with_judge = {r.id for r in target_rows(TARGETS["table-7"])}
    assert without < with_judge
    assert all(r.needs_judge for r in rows_of_table(7) if r.id in with_judge - without)


def test_one_seed_keeps_the_bootstrap_interval_and_several_seeds_use_a_t_interval():
    one = combine_seeds([{"dino": (0.5, 0.4, 0.6)}])
    assert one == {"dino": (0.5, 0.4, 0.6)}
    three = combine_seeds([{"dino": (0.1, 0, 1)}, {"dino": (0.2, 0, 1)}, {"dino": (0.6, 0, 1)}])
    mean, low, high = three["dino"]
    # by hand: mean 0.3, sd = sqrt(((-.2)^2 + (-.1)^2 + .3^2) / 2) = sqrt(0.07), t(0.975, 2) = 4.302653
    half = 4.302652729911275 * math.sqrt(0.07) / math.sqrt(3)
    assert mean == pytest.approx(0.3)
    assert (low, high) == pytest.approx((0.3 - half, 0.3 + half))
    with pytest.raises(ValueError):
        combine_seeds([])


def _point(mean: float, se: float) -> tuple[float, float, float]:
    z = 1.959963984540054
    return (mean, mean - z * se, mean + z * se)


def test_difference_with_one_seed_adds_the_rows_errors():
    measured = {"a": [{"dino": _point(0.5, 0.03)}], "b": [{"dino": _point(0.4, 0.04)}]}
    mean, low, high, seeds = difference(measured, [("a", "b")], "dino")
    assert seeds == 1 and mean == pytest.approx(0.1)
    assert high - mean == pytest.approx(1.959963984540054 * 0.05)  # sqrt(0.03^2 + 0.04^2) = 0.05


def test_difference_over_seeds_is_paired_by_seed():
    measured = {
        "a": [{"x": _point(v, 1.0)} for v in (1.0, 2.0, 3.0)],
        "b": [{"x": _point(v, 1.0)} for v in (0.5, 1.5, 2.5)],
    }
    mean, low, high, seeds = difference(measured, [("a", "b")], "x")
    # every seed's difference is exactly 0.5: no spread, whatever the rows' own spread
    assert (mean, low, high, seeds) == pytest.approx((0.5, 0.5, 0.5, 3))


def test_a_row_measured_once_stands_beside_every_seed():
    measured = {
        "trained": [{"x": _point(v, 1.0)} for v in (1.0, 2.0, 4.0)],
        "base": [{"x": _point(0.5, 0.01)}],
    }
    mean, low, high, seeds = difference(measured, [("trained", "base")], "x")
    # per-seed differences 0.5, 1.5, 3.5: mean 11/6, sd sqrt(19/12) ... by hand below
    diffs = [0.5, 1.5, 3.5]
    m = sum(diffs) / 3
    sd = (sum((d - m) ** 2 for d in diffs) / 2) ** 0.5
    half = 4.302652729911275 * sd / 3**0.5  # t(0.975, 2)
    assert seeds == 3 and (mean, low, high) == pytest.approx((m, m - half, m + half))


def _claim() -> Claim:
    return Claim(
        "c",
        "a gains x and loses y",
        "table-2",
        (Condition("x", (("a", "b"),), +1), Condition("y", (("a", "b"),), -1)),
    )


def test_verdicts():
    claim = _claim()
    good = {
        "a": [{"x": _point(1.0, 0.01), "y": _point(0.0, 0.01)}],
        "b": [{"x": _point(0.5, 0.01), "y": _point(0.5, 0.01)}],
    }
    assert evaluate_claim(claim, good)["verdict"] == "supported"
    wrong = {"a": [{"x": _point(0.0, 0.01), "y": _point(0.0, 0.01)}], "b": good["b"]}
    result = evaluate_claim(claim, wrong)
    assert result["verdict"] == "contradicted"
    assert [c["holds"] for c in result["conditions"]] == ["no", "yes"]
    noisy = {"a": [{"x": _point(0.6, 0.2), "y": _point(0.0, 0.01)}], "b": good["b"]}
    assert evaluate_claim(claim, noisy)["verdict"] == "inconclusive"
    assert evaluate_claim(claim, {"a": good["a"]}) == {
        "claim": "c",
        "verdict": "not measured",
        "missing": ["b"],
        "conditions": [],
    }


def test_the_paper_supports_its_own_claims():
    """Fed the paper's own numbers (tiny intervals), every claim is supported: the claims read the tables
    the way the paper does."""
    from cgrpo_core.evaluation.tables import paper_values
    from cgrpo_core.rows import get_row

    rows = {r for claim in CLAIMS for r in claim.rows}
    measured = {r: [{m: _point(v, 1e-6) for m, v in paper_values(get_row(r)).items()}] for r in rows}
    assert [evaluate_claim(c, measured)["verdict"] for c in CLAIMS] == ["supported"] * len(CLAIMS)
