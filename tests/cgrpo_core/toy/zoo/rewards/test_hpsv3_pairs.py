"""The toy HPSv3's training pairs by hand: DreamBench-prompt renders, preference boxes, the Bradley-Terry
loss, and that its subjects come from world.json alone (never ground_truth.json, never ToyBench's)."""

import json
import math
import shutil
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from cgrpo_core.data.dreambench import format_prompt
from cgrpo_core.toy.world.prompts import dreambench_templates, spec_for_template
from cgrpo_core.toy.world.render import render
from cgrpo_core.toy.world.subjects import Subject
from cgrpo_core.toy.zoo.rewards.config import HPSv3TrainConfig, HPSv3VisionConfig
from cgrpo_core.toy.zoo.rewards.hpsv3_training import (
    ATTRIBUTES,
    QUALITY,
    WITHIN_IMAGE,
    WITHIN_PROMPT,
    VisionHeads,
    box,
    bradley_terry,
    draw_pair,
    make_pool,
    preference_step,
    render_attributes,
    training_renders,
    vision_batch,
)
from cgrpo_core.toy.zoo.rewards.prompt_renders import (
    choose_templates,
    prompt_view,
    render_prompts,
    subject_templates,
    syncd_subjects,
    toybench_subjects,
)
from tests.cgrpo_core.toy.zoo.rewards.conftest import TEST_ZOO

DOG = Subject("dog", "circle", "brown", "plain", "white")
TEAPOT = Subject("teapot", "square", "green", "stripes", "yellow")
HAT, PURPLE, SNOW = "a {0} {1} wearing a red hat", "a purple {0} {1}", "a {0} {1} in the snow"


def _views(template_a: str, template_b: str, subject: Subject = DOG):
    """Views of ``subject`` for two templates drawn from the same random state: same placement, pose,
    lighting; only what the templates ask differs."""
    return (
        prompt_view(np.random.default_rng(0), subject, template_a),
        prompt_view(np.random.default_rng(0), subject, template_b),
    )


def test_matched_and_rival_views_differ_in_exactly_the_prompted_change():
    hat, purple = _views(HAT, PURPLE)
    assert (hat.context, hat.accessory, hat.prop) == ("plain", "wearing a red hat", None)
    assert (purple.context, purple.accessory, purple.prop) == ("plain", None, "purple")
    assert replace(hat, accessory=None) == replace(purple, prop=None)  # nothing else differs
    hat, snow = _views(HAT, SNOW)
    assert (snow.context, snow.accessory, snow.prop) == ("snow", None, None)
    assert replace(hat, accessory=None, context="snow") == snow


def test_an_accessory_render_changes_only_the_subjects_surroundings():
    hat, purple = _views(HAT, PURPLE)
    plain = replace(hat, accessory=None)  # the same dog, nothing asked
    with_hat, _ = render(DOG, hat, 64, 2)
    bare, mask = render(DOG, plain, 64, 2)
    changed = (with_hat != bare).any(-1)
    assert 0 < changed.mean() < 0.1  # a hat: a few percent of the image
    recoloured, mask_purple = render(DOG, purple, 64, 2)
    assert (mask_purple == mask).all()  # a colour change keeps the silhouette
    outside = ~(mask > 0)
    assert (recoloured[outside] == bare[outside]).mean() > 0.97  # background untouched (edges anti-aliased)
    assert (recoloured[mask > 0] != bare[mask > 0]).any(-1).mean() > 0.5  # the subject's colour changed


def test_render_prompts_labels_and_determinism():
    table = dreambench_templates()
    jobs = [("dog", DOG, (HAT, PURPLE, SNOW)), ("teapot", TEAPOT, tuple(table.object_templates[:2]))]
    renders = render_prompts(jobs, 32, 2, seed=(0, 1))
    assert len(renders) == 5 and renders.names == ["dog", "teapot"]
    assert renders.prompts[:3] == ["a dog wearing a red hat", "a purple dog", "a dog in the snow"]
    assert renders.prompts[3] == format_prompt(table.object_templates[0], "teapot")
    assert renders.kinds[:3] == ["accessorization", "property", "recontextualization"]
    assert renders.subjects.tolist() == [0, 0, 0, 1, 1]
    assert [g.tolist() for g in renders.groups()] == [[0, 1, 2], [3, 4]]
    again = render_prompts(jobs, 32, 2, seed=(0, 1), workers=2)
    assert np.array_equal(renders.images, again.images)  # a subject's renders do not depend on workers
    other = render_prompts(jobs, 32, 2, seed=(0, 2))
    assert not np.array_equal(renders.images, other.images)


def test_choose_templates_draws_from_each_class_list():
    table = dreambench_templates()
    jobs = choose_templates([("d", DOG), ("t", TEAPOT)], (3, 9), np.random.default_rng(0))
    assert len(jobs[0][2]) == 9 and set(jobs[0][2]) <= set(table.live_templates)  # live: its own list
    assert len(jobs[1][2]) == 3 and set(jobs[1][2]) <= set(table.object_templates)
    assert all(len(set(t)) == len(t) for _, _, t in jobs)  # distinct
    assert not {spec_for_template(t).kind for t in jobs[1][2]} & {"accessorization"}  # objects wear nothing
    everything = choose_templates([("d", DOG)], (25, 99), np.random.default_rng(0))[0][2]
    assert everything == subject_templates(DOG, table) == table.live_templates  # all, in list order


def test_choose_templates_can_ask_for_subject_changing_templates():
    def changing(templates):
        return sum(spec_for_template(t).kind != "recontextualization" for t in templates)

    for seed in range(5):
        dog, teapot = choose_templates(
            [("d", DOG), ("t", TEAPOT)], (10, 4), np.random.default_rng(seed), changes=(3, 8)
        )
        assert len(teapot[2]) == 10 and changing(teapot[2]) >= 3  # the object list has 5 property changes
        assert len(dog[2]) == 4 and changing(dog[2]) == 4  # 8 asked, only 4 templates drawn
        objects = dreambench_templates().object_templates
        assert list(teapot[2]) == [t for t in objects if t in teapot[2]]  # in list order
    # (0, 0): the uniform draw, unchanged
    plain = choose_templates([("t", TEAPOT)], (4, 4), np.random.default_rng(1))
    assert plain == choose_templates([("t", TEAPOT)], (4, 4), np.random.default_rng(1), changes=(0, 0))
    uniform = np.random.default_rng(1).choice(25, size=4, replace=False)
    assert plain[0][2] == tuple(dreambench_templates().object_templates[k] for k in np.sort(uniform))


def _pool():
    """6 items: set 0 = items 0-2 (two share a prompt), set 1 = items 3-4, set 2 = item 5 alone."""
    images = np.arange(6, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    prompts = ["a dog in the snow", "a dog on the beach", "a dog in the snow", "a cat", "a red cat", "a can"]
    return make_pool(images, prompts, np.array([0, 0, 0, 1, 1, 2]), list(255 - images))


def test_pool_partners_are_same_set_other_prompt():
    pool = _pool()
    assert [p.tolist() for p in pool.partners] == [[1], [0, 2], [1], [4], [3], []]
    assert pool.paired.tolist() == [0, 1, 2, 3, 4]
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = draw_pair(pool, True, rng)
        assert pool.labels[a] == pool.labels[b] and pool.prompts[a] != pool.prompts[b]
        a, b = draw_pair(pool, False, rng)
        assert pool.labels[a] != pool.labels[b] and pool.prompts[a] != pool.prompts[b]


def test_box_preferences_by_hand():
    pool = _pool()
    sequences, pairs = box(pool, 0, 1, degraded=True)
    pixel = [int(np.asarray(image)[0, 0, 0]) for image, _ in sequences]
    prompts = [p for _, p in sequences]
    assert pixel == [0, 1, 0, 1, 255]  # a, b, a, b, degraded a
    assert prompts == ["a dog in the snow"] * 2 + ["a dog on the beach"] * 2 + ["a dog in the snow"]
    assert pairs == list(WITHIN_PROMPT + WITHIN_IMAGE + QUALITY)
    for win, lose in WITHIN_PROMPT:  # one prompt, its own image wins over the other's
        assert prompts[win] == prompts[lose] and pixel[win] != pixel[lose]
    for win, lose in WITHIN_IMAGE:  # one image, its own prompt wins over the other's
        assert pixel[win] == pixel[lose] and prompts[win] != prompts[lose]
    for win, _ in WITHIN_PROMPT + WITHIN_IMAGE + QUALITY:  # every winner is an image with its own prompt
        assert (pixel[win], prompts[win]) in {(0, pool.prompts[0]), (1, pool.prompts[1])}
    # both prompts win once and lose once on each image: no prompt is preferred whatever the image
    wins = [prompts[w] for w, _ in WITHIN_IMAGE]
    losses = [prompts[lose] for _, lose in WITHIN_IMAGE]
    assert sorted(wins) == sorted(losses)
    assert box(pool, 0, 1, degraded=False)[1] == list(WITHIN_PROMPT + WITHIN_IMAGE)


def test_preference_step_counts_and_missing_renders():
    pool = _pool()
    cfg = TEST_ZOO.hpsv3.model_copy(update={"boxes_per_step": 3, "quality_share": 1.0})
    sequences, pairs = preference_step((pool, pool), cfg, np.random.default_rng(0))
    assert len(sequences) == 15 and pairs.shape == (15, 2)
    cfg = cfg.model_copy(update={"quality_share": 0.0, "mix": (1.0, 0.0, 0.0, 0.0)})
    sequences, pairs = preference_step((None, pool), cfg, np.random.default_rng(0))  # no renders: SynCD only
    assert len(sequences) == 12 and pairs.shape == (12, 2)
    assert int(pairs.max()) == 11


def test_bradley_terry_by_hand():
    mu = torch.tensor([2.0, 0.0, 1.0])
    pairs = torch.tensor([[0, 1], [2, 1]])
    expected = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-1.0))) / 2
    torch.testing.assert_close(bradley_terry(mu, pairs), torch.tensor(expected))


def test_training_subjects_come_from_world_json_alone(small_world, tmp_path):
    truth = json.loads((small_world / "ground_truth.json").read_text(encoding="utf-8"))
    bare = tmp_path / "world"
    bare.mkdir()
    shutil.copy(small_world / "world.json", bare / "world.json")  # no ground_truth.json, no images
    subjects = syncd_subjects(bare)
    # the re-planned subject of every set is the one the world drew (checked here against its ground truth)
    assert [name for name, _ in subjects] == sorted(truth["sets"])
    assert all(asdict(s) == truth["sets"][name]["subject"] for name, s in subjects)
    bench = {s.key for _, s in toybench_subjects(bare)}
    assert {Subject(**v).key for v in truth["toybench_subjects"].values()} == bench
    cfg = TEST_ZOO.hpsv3.model_copy(update={"templates_per_subject": (2, 3)})
    renders = training_renders((bare,), cfg)
    live = sum(s.class_name in ("dog", "cat") for _, s in subjects)
    assert len(renders) == 2 * (len(subjects) - live) + 3 * live
    shown = {dict(subjects)[name.split("/")[1]].key for name in renders.names}
    assert not shown & bench  # ToyBench's subjects are never rendered for training
    # a second world holding the same identities adds nothing: one render group per identity
    twice = training_renders((bare, bare), cfg.model_copy(update={"render_corpus": True}))
    assert np.array_equal(twice.images, renders.images)


def test_training_renders_can_be_switched_off(small_world):
    cfg = TEST_ZOO.hpsv3.model_copy(update={"templates_per_subject": (0, 0)})
    assert training_renders((small_world,), cfg) is None
    with pytest.raises(ValueError, match="must be non-negative"):
        HPSv3TrainConfig(mix=(-1.0, 1.0, 1.0, 1.0))


def test_render_attributes_name_what_each_template_asks():
    scenes, accessories, properties = ATTRIBUTES
    assert render_attributes([HAT, PURPLE, SNOW]).tolist() == [
        [0, accessories.index("wearing a red hat"), 0],  # plain background, a red hat, no property change
        [0, 0, properties.index("purple")],
        [scenes.index("snow"), 0, 0],
    ]
    assert scenes[0] == "plain" and accessories[0] == properties[0] == "none"
    assert len(set(scenes)) == len(scenes) and "snow" in scenes and "jungle" in scenes


def test_vision_batch_labels_each_image_clean_or_degraded_with_its_attributes():
    views = _pool()  # no attributes: -1
    assert (views.attributes == -1).all()
    images = np.arange(3, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    attributes = np.array([[1, 0, 0], [0, 2, 0], [0, 0, 3]])
    renders = make_pool(images, [HAT, PURPLE, SNOW], np.zeros(3), list(255 - images), attributes)
    batch, labels = vision_batch((renders, views), 40, np.random.default_rng(0))
    assert len(batch) == 40 and labels.shape == (40, 4)
    for k, (image, label) in enumerate(zip(batch, labels.tolist(), strict=True)):
        value = int(np.asarray(image)[0, 0, 0])
        degraded = label[0] == 1
        pool = renders if k % 2 == 0 else views  # alternately: renders, views
        i = 255 - value if degraded else value
        assert np.array_equal(np.asarray(pool.degraded[i] if degraded else pool.images[i]), np.asarray(image))
        assert label[1:] == pool.attributes[i].tolist()  # a render keeps its attributes when degraded
    assert 0 < int(labels[:, 0].sum()) < 40  # both clean and degraded drawn
    _, only_views = vision_batch((None, views), 6, np.random.default_rng(0))
    assert (only_views[:, 1:] == -1).all()


def test_vision_heads_loss_by_hand():
    heads = VisionHeads(8, ("degraded", "scene", "accessory"))
    torch.nn.init.zeros_(heads.linear.weight)
    torch.nn.init.zeros_(heads.linear.bias)  # uniform logits: log(K) per labelled head
    tokens = torch.randn(3, 4, 8)
    labels = torch.tensor([[0, 2, 1, 0], [1, 0, 0, 3], [1, 1, 0, 0]])
    expected = (
        math.log(2) + math.log(len(ATTRIBUTES[0])) + math.log(len(ATTRIBUTES[1]))
    )  # property: not a target
    torch.testing.assert_close(heads.loss(tokens, labels), torch.tensor(expected))
    views = torch.tensor([[1, -1, -1, -1], [0, -1, -1, -1]])  # views: only "degraded" is labelled
    torch.testing.assert_close(heads.loss(tokens[:2], views), torch.tensor(math.log(2)))
    with pytest.raises(ValueError, match="vision targets"):
        HPSv3VisionConfig(targets=("degraded", "colour"))
