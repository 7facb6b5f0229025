"""The zoo's training pieces: hand-checked losses and helpers, and deterministic training for a seed."""

import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from cgrpo_core.rewards.config import HPSv3Config
from cgrpo_core.rewards.hpsv3 import HPSv3, load_hpsv3_model
from cgrpo_core.rewards.segmentation import load_segmenter
from cgrpo_core.schema import config_hash
from cgrpo_core.toy.zoo.rewards.aesthetic_head import fit_linear_head
from cgrpo_core.toy.zoo.rewards.clip_training import caption_variants, quality_caption, train_clip
from cgrpo_core.toy.zoo.rewards.config import AestheticTrainConfig, HPSv3VisionConfig, hpsv3_config
from cgrpo_core.toy.zoo.rewards.data import syncd_views, world_corpus
from cgrpo_core.toy.zoo.rewards.dino_training import augment, info_nce, train_dinov2
from cgrpo_core.toy.zoo.rewards.hpsv3_training import (
    HPSv3Data,
    TrainingInputs,
    build_hpsv3,
    caption_loss,
    instruction_span,
    scores_and_hidden,
    short_inputs,
    train_hpsv3,
)
from tests.cgrpo_core.toy.zoo.rewards.conftest import TEST_ZOO


def test_info_nce_by_hand():
    # two pairs in 2-D, z1 = z2 = (e1, e2): row 0 (e1) sees [self: -inf, e2: 0, its partner e1: 1, e2: 0] / T,
    # so every row's loss is -log(e^(1/T) / (e^(1/T) + 2 e^0))
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = z1.clone()
    t = 0.5
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2 * math.exp(0.0)))
    torch.testing.assert_close(info_nce(z1, z2, t), torch.tensor(expected))
    # with cap 0.8 a positive at cos 1 counts as 0.8; per-pair caps: pair 0 capped, pair 1 not
    capped = -math.log(math.exp(0.8 / t) / (math.exp(0.8 / t) + 2 * math.exp(0.0)))
    torch.testing.assert_close(info_nce(z1, z2, t, cap=0.8), torch.tensor(capped))
    mixed = info_nce(z1, z2, t, cap=torch.tensor([0.8, 1.0]))
    torch.testing.assert_close(mixed, torch.tensor((capped + expected) / 2))


def test_augment_identity_and_flip():
    x = torch.randn(3, 3, 8, 8)
    gen = torch.Generator().manual_seed(0)
    torch.testing.assert_close(augment(x, gen, 1.0, 0.0, flip=False), x, atol=1e-5, rtol=0)
    flipped = augment(x, torch.Generator().manual_seed(0), 1.0, 0.0, flip=True)
    for out, image in zip(flipped, x, strict=True):  # each image either as is or mirrored
        assert torch.allclose(out, image, atol=1e-5) or torch.allclose(out, image.flip(-1), atol=1e-5)


def test_positive_pairs_are_two_views_or_one_view_twice():
    from cgrpo_core.toy.zoo.rewards.dino_training import _draw

    groups = [np.array([0, 1, 2]), np.array([3, 4]), np.array([5, 6, 7])]
    gen = torch.Generator().manual_seed(0)
    views, twins = _draw(groups, kinds=1, count=3, gen=gen)
    assert not twins.any() and (views[:, 0, 0] != views[:, 1, 0]).all()  # two different views of a set
    group_of = {int(i): g for g, idx in enumerate(groups) for i in idx}
    assert sorted(group_of[int(a)] for a in views[:, 0, 0]) == [0, 1, 2]  # one pair per set
    assert all(group_of[int(a)] == group_of[int(b)] for a, b in views[:, :, 0].tolist())
    views, twins = _draw(groups, kinds=1, count=3, gen=gen, self_share=1.0)
    assert twins.all() and (views[:, 0, 0] == views[:, 1, 0]).all()  # one image, augmented twice


def test_caption_variants_and_quality_caption():
    caption = "a red round dog in the snow next to a ball, on the left"
    assert caption_variants(caption) == [
        caption,
        "a red round dog in the snow next to a ball",
        "a red round dog in the snow, on the left",
        "a red round dog",
        "a dog in the snow",
        "a dog",
    ]
    # the class of a cartoon drawing is the last class word; an edit prompt names no scene
    assert caption_variants("a cartoon drawing of a teapot on the beach")[-2:] == [
        "a teapot on the beach",
        "a teapot",
    ]
    assert caption_variants("a purple dog") == ["a purple dog"]
    assert quality_caption("a dog", "blur") == "a blurry noisy photo of a dog"


def test_linear_head_recovers_a_linear_map():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 4, generator=gen)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 5.0  # noiseless: the MSE optimum is this map
    head, curve = fit_linear_head(x, y, AestheticTrainConfig(steps=400, learning_rate=0.05, weight_decay=0))
    torch.testing.assert_close(
        head.weight.detach()[0], torch.tensor([1.0, -2.0, 0.5, 0.0]), atol=0.02, rtol=0
    )
    torch.testing.assert_close(head.bias.detach(), torch.tensor([5.0]), atol=0.02, rtol=0)
    assert curve[-1][1] < 1e-3 < curve[0][1]


def _train_dino(views, segmenter, folder, seed):
    cfg = TEST_ZOO.dinov2.model_copy(update={"steps": 3, "seed": seed})  # masked, segmented, twins
    curve = train_dinov2(views, cfg, folder, progress=False, segmenter=segmenter)
    return curve, load_file(str(folder / "model.safetensors"))


def test_dino_needs_the_segmenter_for_segmented_inputs(small_world, tmp_path):
    with pytest.raises(ValueError, match="need the toy segmenter"):
        train_dinov2(syncd_views(small_world), TEST_ZOO.dinov2, tmp_path, progress=False)


def test_dino_training_is_deterministic_for_a_seed(zoo, small_world, tmp_path):
    views, segmenter = syncd_views(small_world), load_segmenter(zoo.models.segmenter)
    curve_a, state_a = _train_dino(views, segmenter, tmp_path / "a", 0)
    curve_b, state_b = _train_dino(views, segmenter, tmp_path / "b", 0)
    curve_c, _ = _train_dino(views, segmenter, tmp_path / "c", 1)
    assert curve_a == curve_b and curve_a != curve_c
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_clip_training_is_deterministic_for_a_seed(small_world, tmp_path):
    views = syncd_views(small_world)
    cfg = TEST_ZOO.clip.model_copy(update={"steps": 3})
    runs = [train_clip(views, cfg, TEST_ZOO.degradation, tmp_path / k, progress=False) for k in "ab"]
    assert runs[0] == runs[1]


def test_hpsv3_short_form_keeps_real_positions(small_world, tmp_path):
    views = syncd_views(small_world)
    cfg = TEST_ZOO.hpsv3
    folder = build_hpsv3(tmp_path / "hps", cfg, world_corpus(list(views.captions)))
    reward_cfg: HPSv3Config = hpsv3_config(folder, cfg.image_pixels)
    model, processor = load_hpsv3_model(reward_cfg)
    scorer = HPSv3(model, processor, reward_cfg, "cpu")
    pairs = [(views.pil(i), views.captions[i]) for i in range(3)]
    span = instruction_span(scorer)
    full, short = scorer.inputs(pairs), short_inputs(scorer, pairs, span)
    positions, _ = model.backbone.get_rope_index(
        full["input_ids"],
        mm_token_type_ids=full["mm_token_type_ids"],
        image_grid_thw=full["image_grid_thw"],
        attention_mask=full["attention_mask"],
    )
    drop = span[1] - span[0]
    assert drop > 300  # HPSv3's instruction is a few hundred tokens
    assert short["input_ids"].shape[1] == full["input_ids"].shape[1] - drop
    torch.testing.assert_close(short["input_ids"][:, span[0] :], full["input_ids"][:, span[1] :])
    torch.testing.assert_close(short["position_ids"][:, :, span[0] :], positions[:, :, span[1] :])
    text = processor.tokenizer.decode(short["input_ids"][0])
    assert "Textual prompt - " + views.captions[0] in text and "Visual Quality" not in text


def test_hpsv3_training_inputs_match_the_rewards_own(small_world, tmp_path):
    """The training's cached inputs score exactly as the reward's real input and the short form."""
    views = syncd_views(small_world)
    cfg = TEST_ZOO.hpsv3
    folder = build_hpsv3(tmp_path / "hps", cfg, world_corpus(list(views.captions)))
    reward_cfg = hpsv3_config(folder, cfg.image_pixels)
    model, processor = load_hpsv3_model(reward_cfg)
    scorer = HPSv3(model, processor, reward_cfg, "cpu")
    span = instruction_span(scorer)
    cached = TrainingInputs(scorer, span, views.pil(0).size)
    pairs = [(views.pil(i), views.captions[(5 * i) % len(views)]) for i in range(6)]  # prompts of all lengths
    with torch.no_grad():
        torch.testing.assert_close(model(**cached(pairs, short=False)), model(**scorer.inputs(pairs)))
        short = model(**short_inputs(scorer, pairs, span))
        torch.testing.assert_close(model(**cached(pairs, short=True)), short)
        mu, hidden = scores_and_hidden(model, cached(pairs, short=True))
        torch.testing.assert_close(mu, short[:, 0])
    assert hidden.shape[:2] == cached(pairs, short=True)["input_ids"].shape


def test_caption_loss_reads_the_prompt_tokens(small_world, tmp_path):
    """The captioning loss predicts each prompt token from the one before: a model whose logits are
    uniform over the vocabulary pays log(V) per token."""
    views = syncd_views(small_world)
    cfg = TEST_ZOO.hpsv3
    folder = build_hpsv3(tmp_path / "hps", cfg, world_corpus(list(views.captions)))
    reward_cfg = hpsv3_config(folder, cfg.image_pixels)
    model, processor = load_hpsv3_model(reward_cfg)
    scorer = HPSv3(model, processor, reward_cfg, "cpu")
    span = instruction_span(scorer)
    inputs = TrainingInputs(scorer, span, views.pil(0).size)([(views.pil(0), views.captions[0])], short=True)
    with torch.no_grad():
        model.backbone.language_model.embed_tokens.weight.zero_()  # logits 0: uniform
        _, hidden = scores_and_hidden(model, inputs)
        loss = caption_loss(model, hidden, inputs, torch.tensor([0]), span[0] + 4)
    vocab = model.backbone.language_model.embed_tokens.weight.shape[0]
    torch.testing.assert_close(loss, torch.tensor(math.log(vocab)))


def test_hpsv3_training_is_deterministic_and_saved_as_trained(small_world, tmp_path):
    data = HPSv3Data(syncd_views(small_world), (small_world,))
    cfg = TEST_ZOO.hpsv3.model_copy(update={"short_steps": 2, "steps": 1})
    curves = [train_hpsv3(data, cfg, TEST_ZOO.degradation, tmp_path / k, progress=False) for k in "ab"]
    assert curves[0] == curves[1] and len(curves[0]) == 3
    a, b = (load_file(str(tmp_path / k / "HPSv3.safetensors")) for k in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)
    initial_bias = cfg.score_offset  # mu starts on HPSv3's scale, then moves a little in 3 steps
    assert abs(float(a["rm_head.5.bias"][0]) - initial_bias) < 1.0


def test_world_corpus_holds_every_dreambench_prompt(small_world):
    captions = list(syncd_views(small_world).captions)
    corpus = world_corpus(captions + captions[:3])
    # the unique captions, then DreamBench's 25 prompts for each of the 15 toy classes
    assert len(corpus) == len(set(captions)) + 15 * 25
    assert corpus[: len(set(captions))] == sorted(set(captions))
    assert "a dog wearing a red hat" in corpus and "a cube shaped teapot" in corpus


def test_the_vision_phase_comes_first_and_a_frozen_tower_stays_as_it_left_it(small_world, tmp_path):
    data = HPSv3Data(syncd_views(small_world), (small_world,))
    base = TEST_ZOO.hpsv3.model_copy(update={"short_steps": 2, "steps": 1})
    untrained = tmp_path / "untrained"
    build_hpsv3(untrained, base, world_corpus(list(data.views.captions)))
    start = load_file(str(untrained / "HPSv3.safetensors"))
    visual = [k for k in start if k.startswith("visual.")]
    curves, saved = {}, {}
    for name, freeze in (("frozen", True), ("trained_on", False)):
        phase = HPSv3VisionConfig(steps=2, batch=4, freeze=freeze)
        cfg = base.model_copy(update={"vision": phase})
        curves[name] = train_hpsv3(data, cfg, TEST_ZOO.degradation, tmp_path / name, progress=False)
        saved[name] = load_file(str(tmp_path / name / "HPSv3.safetensors"))
    assert [s for s, _ in curves["frozen"]] == [0, 1, 2, 3, 4]  # 2 vision steps, then 2 short + 1 real
    assert curves["frozen"][:2] == curves["trained_on"][:2]  # the same vision phase
    kept, moved = saved["frozen"], saved["trained_on"]
    assert visual and any(not torch.equal(start[k], kept[k]) for k in visual)  # the phase trained the tower
    assert any(not torch.equal(moved[k], kept[k]) for k in visual)  # unfrozen, preferences moved it again
    assert not torch.equal(start["model.embed_tokens.weight"], kept["model.embed_tokens.weight"])
    again = HPSv3VisionConfig(steps=2, batch=4, freeze=True)
    replay = train_hpsv3(
        data,
        base.model_copy(update={"vision": again}),
        TEST_ZOO.degradation,
        tmp_path / "again",
        progress=False,
    )
    assert replay == curves["frozen"]  # deterministic
    # frozen after the same phase, the tower is the same whatever the preference steps that follow
    fewer = base.model_copy(update={"vision": again, "short_steps": 0, "steps": 1})
    train_hpsv3(data, fewer, TEST_ZOO.degradation, tmp_path / "fewer", progress=False)
    other = load_file(str(tmp_path / "fewer" / "HPSv3.safetensors"))
    assert all(torch.equal(other[k], kept[k]) for k in visual)
    assert not torch.equal(other["model.embed_tokens.weight"], kept["model.embed_tokens.weight"])


def test_the_vision_phase_counts_in_the_hash_only_when_set():
    """None (the default) leaves every key as it was before the option (test_golden_hashes); a phase
    makes a new one."""
    cfg = TEST_ZOO.hpsv3
    assert cfg.vision is None
    assert config_hash(cfg.model_copy(update={"vision": HPSv3VisionConfig()})) != config_hash(cfg)
