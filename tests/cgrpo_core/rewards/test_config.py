"""Reward configs: registries match the Literals, presets carry the documented protocols, hashing."""

import typing

import pytest
from pydantic import ValidationError

from cgrpo_core.rewards import config as rc
from cgrpo_core.rewards.embeddings import BACKBONES
from cgrpo_core.rewards.registry import REWARDS
from cgrpo_core.rewards.segmentation import SEGMENTERS
from cgrpo_core.schema import config_hash


@pytest.mark.parametrize(
    ("literal", "registry"),
    [(rc.RewardName, REWARDS), (rc.Family, BACKBONES), (rc.SegmenterKind, SEGMENTERS)],
)
def test_registry_matches_literal(literal, registry):
    assert set(typing.get_args(literal)) == set(registry)


def test_paper_preset_is_dinov2_large_segmented_and_hpsv3():
    cfg = rc.RewardsConfig()
    assert (cfg.id, cfg.prompt) == ("dino_seg", "hpsv3")
    seg = cfg.models.dino_seg
    assert (seg.family, seg.model_id, seg.segment, seg.scale) == (
        "dinov2",
        "facebook/dinov2-large",
        "both",
        1.0,
    )
    assert cfg.models.hpsv3.image_pixels == 256 * 28 * 28
    assert cfg.models.segmenter.kind == "detector_sam"
    assert rc.paper_reward_models() == cfg.models


def test_released_preset_is_dinov2_base_x100_against_segmented_reference():
    seg = rc.released_reward_models().dino_seg
    assert (seg.model_id, seg.scale, seg.segment) == ("facebook/dinov2-base", 100.0, "reference")


def test_dreambench_preset_pins_the_protocol():
    models = rc.dreambench_metric_models()
    assert (models.dino.family, models.dino.model_id) == ("dino_v1", "facebook/dino-vits16")
    for cfg in (models.dino, models.clip_i, models.clip_t):
        assert cfg.image_prep == "resize_crop" and cfg.interpolation == "bilinear"
        assert cfg.crop_fraction == pytest.approx(224 / 256)
        assert cfg.segment == "none" and cfg.scale == 1.0
    assert models.clip_i.model_id == models.clip_t.model_id == "openai/clip-vit-base-patch32"


def test_folders_and_batch_sizes_do_not_change_the_hash_model_ids_do():
    base = rc.RewardModels()
    moved = base.model_copy(
        update={"dino": base.dino.model_copy(update={"local_dir": "/elsewhere", "batch_size": 3})}
    )
    other = base.model_copy(
        update={"dino": base.dino.model_copy(update={"model_id": "facebook/dinov2-base"})}
    )
    assert config_hash(moved) == config_hash(base)
    assert config_hash(other) != config_hash(base)


def test_sections_cover_every_reward_and_exist():
    assert set(rc.SECTIONS) == set(REWARDS)
    assert {s for sections in rc.SECTIONS.values() for s in sections} <= set(rc.RewardModels.model_fields)


def test_used_sections_keeps_only_what_the_metrics_read():
    models = rc.dreambench_metric_models()
    kept = rc.used_sections(models, ["dino", "clip_t"])
    assert kept.dino == models.dino and kept.clip_t == models.clip_t
    assert kept.clip_i == rc.RewardModels().clip_i != models.clip_i


def test_bad_configs_are_clear_errors():
    with pytest.raises(ValidationError, match="clip_t needs a CLIP model"):
        rc.RewardModels(clip_t=rc.EmbeddingRewardConfig(family="dinov2", model_id="facebook/dinov2-base"))
    with pytest.raises(ValidationError, match="score_min"):
        rc.VLMJudgeConfig(score_min=5, score_max=1)
    with pytest.raises(ValidationError):
        rc.RewardsConfig(id="dino_sag")
    with pytest.raises(ValidationError, match="rewards.id must compare with the reference"):
        rc.RewardsConfig(id="hpsv3", prompt="dino_seg")


def test_table7_rows_are_valid_and_distinct():
    rows = rc.table7_rewards()
    assert list(rows) == [
        "DINO, CLIP-T",
        "CLIP-I, CLIP-T",
        "Qwen-VL-Max",
        "GPT-4o",
        "Gemini-2.5-Pro",
        "DINO-Seg, HPS-v3",
    ]
    assert len({config_hash(cfg) for cfg in rows.values()}) == len(rows)
    assert rows["GPT-4o"].models.vlm.model == "gpt-4o-2024-08-06" and rows["GPT-4o"].id == "vlm_judge_id"
