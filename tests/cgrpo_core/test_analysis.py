"""The data behind Fig. 3, 6, 7."""

import math

import pandas as pd
import pytest

from cgrpo_core.analysis import (
    CATEGORIES,
    AnalysisConfig,
    advantage_alignment,
    analysis_config,
    load_reward_samples,
    sars_cross_section,
    synthetic_reward_samples,
    tdw_curves,
)
from cgrpo_core.config import experiment_config
from cgrpo_core.schema import config_hash


def test_cross_section_hand_values():
    table = sars_cross_section(AnalysisConfig(), num_points=7)  # a_id = -3, -2, ..., 3
    row = table.set_index("a_id")
    # a_prompt = 1, w = 0.5 / 0.5, alpha = 0.5; a_prompt > 0 so the synergy term is always added
    for a in (-3.0, -1.0, 0.0, 1.0, 2.0):
        assert row.loc[a, "linear"] == pytest.approx(0.5 * a + 0.5)
        assert row.loc[a, "sars"] == pytest.approx(0.5 * a + 0.5 + 0.5 * math.tanh(a))
    assert set(table.columns) == {"a_id", "a_prompt", "linear", "sars", "min", "max", "harmonic"}


def test_tdw_curves_cover_every_schedule():
    table = tdw_curves(AnalysisConfig(num_steps=25))
    assert sorted(table["schedule"].unique()) == ["inverted", "paper", "released", "static"]
    assert len(table) == 4 * 25
    paper = table[table["schedule"] == "paper"].set_index("step")
    assert paper.loc[0, "w_prompt"] == pytest.approx(0.7) and paper.loc[24, "w_prompt"] == pytest.approx(0.3)
    assert (table["w_prompt"] + table["w_id"]).round(12).eq(1.0).all()


def test_the_figures_show_what_a_preset_trains():
    paper, released = experiment_config("toy"), experiment_config("toy", "released_code")
    cfg = analysis_config(released, "released_code")
    assert cfg.advantage == released.grpo.advantage and cfg.tdw == released.grpo.tdw
    assert cfg.num_steps == released.sampler.num_steps == 10 and cfg.advantage.alpha == 0.4
    assert cfg.preset == "released_code" and cfg.profile == "toy"
    assert config_hash(cfg) != config_hash(analysis_config(paper))  # other alpha and schedule
    # Fig. 3 follows the preset's alpha: 0.4 * tanh(1) at a_id = a_prompt = 1 (w 0.5 / 0.5)
    row = sars_cross_section(cfg, num_points=7).set_index("a_id").loc[1.0]
    assert row["sars"] == pytest.approx(0.5 + 0.5 + 0.4 * math.tanh(1.0))
    # a naive preset's bounds (w_max = w_min = 0.6) exclude the released 0.5: drawn clamped, not an error
    naive = analysis_config(
        experiment_config(
            "toy", changes={"grpo.tdw.schedule": "static", "grpo.tdw.w_max": 0.6, "grpo.tdw.w_min": 0.6}
        )
    )
    assert set(tdw_curves(naive)["w_prompt"].round(12)) == {0.6}


def test_synthetic_samples_are_seeded():
    cfg = AnalysisConfig(synthetic_groups=5, synthetic_group_size=4)
    a, b = synthetic_reward_samples(cfg), synthetic_reward_samples(cfg)
    assert a.equals(b) and len(a) == 20
    assert not a.equals(synthetic_reward_samples(cfg.model_copy(update={"seed": 1})))


def test_alignment_hand_example():
    # One group of 4: r_id = [1, 2, 3, 4] -> a_id signs [-, -, +, +];  r_prompt = [4, 1, 3, 2] -> [+, -, +, -]
    samples = pd.DataFrame({"group": [0] * 4, "reward_id": [1.0, 2, 3, 4], "reward_prompt": [4.0, 1, 3, 2]})
    per_sample, by_category, stats = advantage_alignment(samples, AnalysisConfig())
    assert per_sample["category"].tolist() == ["id_failure", "poor", "perfect", "prompt_failure"]
    assert stats == {"both_positive": 0.25, "both_negative": 0.25, "conflict": 0.5, "neutral": 0.0}
    assert by_category["category"].tolist() == list(CATEGORIES)
    assert (
        by_category.set_index("category").loc["perfect", "sars"]
        > by_category.set_index("category").loc["perfect", "linear"]
    )


def test_load_reward_samples_checks_input(tmp_path):
    good = tmp_path / "r.csv"
    pd.DataFrame({"group": [0, 0, 1, 1], "reward_id": [1, 2, 3, 4], "reward_prompt": [1, 2, 3, 4]}).to_csv(
        good, index=False
    )
    assert len(load_reward_samples(good)) == 4
    pq = tmp_path / "r.parquet"
    pd.read_csv(good).to_parquet(pq)
    assert len(load_reward_samples(pq)) == 4

    bad = tmp_path / "bad.csv"
    pd.DataFrame({"group": [0, 0], "reward_id": [1, 2]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['reward_prompt'\]"):
        load_reward_samples(bad)
    pd.DataFrame({"group": [0, 0, 1], "reward_id": [1, 2, 3], "reward_prompt": [1, 2, 3]}).to_csv(
        bad, index=False
    )
    with pytest.raises(ValueError, match="same size G >= 2"):
        load_reward_samples(bad)
    pd.DataFrame({"group": [0, 0], "reward_id": [1, "x"], "reward_prompt": [1, 2]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="non-numeric or non-finite"):
        load_reward_samples(bad)
    with pytest.raises(FileNotFoundError):
        load_reward_samples(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match=".csv or .parquet"):
        load_reward_samples(tmp_path / "r.txt")
