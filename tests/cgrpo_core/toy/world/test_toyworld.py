"""Toy world: determinism, held-out ToyBench, planted defects, DreamBench prompts, rendering properties."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from cgrpo_core.data.dreambench import format_prompt, prompt_kind
from cgrpo_core.data.scorers import noise_aesthetic
from cgrpo_core.toy.world.config import ToyWorldConfig
from cgrpo_core.toy.world.generate import generate_toy_world
from cgrpo_core.toy.world.prompts import dreambench_templates, spec_for_template, syncd_caption
from cgrpo_core.toy.world.render import View, degrade, render
from cgrpo_core.toy.world.subjects import CLASSES, Subject, drifted, sample_subject
from tests.conftest import SMALL_WORLD_BENCH_IMAGES

TINY = ToyWorldConfig(syncd_sets=6, resolution=32, supersample=2, bench_images=1)


def files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    generate_toy_world(TINY, tmp_path / "a", progress=False)
    generate_toy_world(TINY.model_copy(update={"workers": 2}), tmp_path / "b", progress=False)
    generate_toy_world(TINY.model_copy(update={"seed": 1}), tmp_path / "c", progress=False)
    a, b, c = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert a == b  # byte-identical, also when rendered by 2 processes
    images = json.loads(a["world.json"])["syncd_images"]
    # toy SynCD images + masks + metadata, ToyBench images + masks, prompts, protocol, ground truth, world
    assert len(a) == 2 * images + 6 + 30 * 2 + 4
    assert a["syncd/00000/0.png"] != c["syncd/00000/0.png"]


def test_layout_masks_and_metadata(toy_world):
    metadata = sorted((toy_world / "syncd").glob("*/metadata.json"))
    assert len(metadata) == 60
    for path in metadata:
        (item,) = json.loads(path.read_text())
        assert len(item["prompts"]) == len(item["filenames"]) in (2, 3)
        assert item["category"] == (
            "deformable"
            if " dog" in item["category_description"] or " cat" in item["category_description"]
            else "rigid"
        )
        for name in item["filenames"]:
            image = Image.open(path.parent / name)
            mask = np.asarray(Image.open(path.parent / "masks" / name))
            assert image.size == (64, 64) and image.mode == "RGB" and mask.shape == (64, 64)
            assert set(np.unique(mask)) <= {0, 255} and (mask == 255).sum() > 20


def test_planted_defects_and_edits(toy_world):
    truth = json.loads((toy_world / "ground_truth.json").read_text())["sets"]
    defects = [t["defect"] for t in truth.values()]
    # 60 sets: round(60 * 0.07) drift, round(60 * 0.06) duplicates, round(60 * 0.07) low quality
    assert (
        defects.count("identity_drift"),
        defects.count("near_duplicate"),
        defects.count("low_quality"),
    ) == (4, 4, 4)
    templates = dreambench_templates()
    for set_id, t in truth.items():
        (item,) = json.loads((toy_world / "syncd" / set_id / "metadata.json").read_text())
        n = len(item["filenames"])
        if t["edit"]:  # an edited view is the last one and says what DreamBench says
            assert (
                t["status"] == "good"
                and prompt_kind(t["edit"], templates.object_templates) != "recontextualization"
            )
            assert item["prompts"][-1] == format_prompt(t["edit"], t["subject"]["class_name"])
        if t["defect"] == "near_duplicate":
            views = [
                np.asarray(Image.open(toy_world / "syncd" / set_id / f), dtype=int) for f in item["filenames"]
            ]
            assert t["bad_views"] == list(range(n)) and max(np.abs(v - views[0]).max() for v in views) <= 8
        if t["defect"] == "identity_drift":
            (k,) = t["bad_views"]
            drift, subject = t["drift_subject"], t["subject"]
            assert all(drift[a] != subject[a] for a in ("shape", "color", "pattern"))
            assert drift["class_name"] == subject["class_name"]
        if t["defect"] == "low_quality":
            scores = noise_aesthetic(
                [Image.open(toy_world / "syncd" / set_id / f) for f in item["filenames"]]
            )
            assert all((scores[i] < 5) == (i in t["bad_views"]) for i in range(n))


def test_toybench_subjects_are_held_out(toy_world):
    truth = json.loads((toy_world / "ground_truth.json").read_text())
    bench = {tuple(s.values()) for s in truth["toybench_subjects"].values()}
    seen = {tuple(t["subject"].values()) for t in truth["sets"].values()}
    seen |= {tuple(t["drift_subject"].values()) for t in truth["sets"].values() if t["drift_subject"]}
    assert len(bench) == 30 and not bench & seen
    for name in truth["toybench_subjects"]:
        assert (
            len(list((toy_world / "toybench" / "dataset" / name).glob("*.png"))) == SMALL_WORLD_BENCH_IMAGES
        )
        assert len(list((toy_world / "toybench" / "dataset" / name / "masks").glob("*.png"))) == 2


def test_every_dreambench_prompt_has_a_renderer():
    table = dreambench_templates()
    for template in set(table.object_templates + table.live_templates):
        spec = spec_for_template(template)
        assert spec.kind == prompt_kind(template, table.object_templates)
        subject = Subject("dog", "circle", "brown", "dots", "white")
        image, mask = render(
            subject, View(context=spec.context, accessory=spec.accessory, prop=spec.prop), 32, 2
        )
        assert image.shape == (32, 32, 3) and mask.any()
    assert spec_for_template("a cube shaped {0} {1}").prop == "cube shaped"
    with pytest.raises(ValueError, match=re.escape("no renderer for the prompt 'a {0} {1} on the moon'")):
        spec_for_template("a {0} {1} on the moon")


def subject_pixels(image, mask):
    return image[mask > 0].astype(float)


def test_rendering_follows_the_view():
    subject = Subject("cat", "square", "brown", "plain", "white")
    base_image, base_mask = render(subject, View())
    purple_image, purple_mask = render(subject, View(prop="purple"))
    # the purple cat's body is purple (128, 50, 170), the brown one's brown (140, 86, 50)
    assert (
        subject_pixels(purple_image, purple_mask)[:, 2].mean()
        > subject_pixels(base_image, base_mask)[:, 2].mean() + 60
    )
    _, hat_mask = render(subject, View(accessory="wearing a santa hat"))
    assert (hat_mask > 0).sum() > (base_mask > 0).sum() + 20  # a worn hat is part of the subject
    _, covered = render(subject, View(companion="box"))
    assert (covered > 0).sum() < (base_mask > 0).sum() - 20  # a companion in front hides part of it
    assert not np.array_equal(render(subject, View(prop="cube shaped"))[1], base_mask)
    moved_image, moved_mask = render(subject, View(cx=0.3))
    assert np.flatnonzero((moved_mask > 0).any(0)).mean() < np.flatnonzero((base_mask > 0).any(0)).mean() - 8
    assert np.array_equal(render(subject, View(detail_seed=3))[0], render(subject, View(detail_seed=3))[0])


def test_degradations_lower_quality():
    image, _ = render(Subject("vase", "star", "teal", "stripes", "yellow"), View(context="snow"))
    rng = np.random.default_rng(0)
    for kind in ("blur", "blocky", "washed"):
        worse = degrade(image, kind, rng, noise=0.1)
        assert worse.shape == image.shape and noise_aesthetic([Image.fromarray(worse)])[0] < 5
    assert noise_aesthetic([Image.fromarray(image)])[0] > 8
    with pytest.raises(ValueError, match="unknown degradation 'smear'"):
        degrade(image, "smear", rng)


def test_subjects_and_captions():
    rng = np.random.default_rng(0)
    subject = sample_subject(rng, "dog")
    other = drifted(subject, rng)
    assert other.class_name == "dog" and other.shape != subject.shape and other.color != subject.color
    assert (
        Subject("dog", "circle", "red", "stripes", "blue").description() == "red round dog with blue stripes"
    )
    assert Subject("can", "star", "grey", "plain", "red").description() == "grey star-shaped can"
    assert syncd_caption("orange round dog", "in the snow", companion="ball", position="left") == (
        "an orange round dog in the snow next to a ball, on the left"
    )
    assert syncd_caption("dog", None, size="small", style="cartoon") == "a cartoon drawing of a small dog"
    assert {c for c, spec in CLASSES.items() if spec.live} == {"dog", "cat"}
    with pytest.raises(ValueError, match="unknown toy class 'horse'"):
        sample_subject(rng, "horse")
