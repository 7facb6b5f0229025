"""The evaluation engine: the plan, units of work, resumed runs that end identical, and paired noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cgrpo_core.evaluation import generation
from cgrpo_core.evaluation.engine import (
    check_scores,
    evaluate_images,
    load_references,
    plan_images,
    work_units,
)
from cgrpo_core.evaluation.generation import BenchItem, image_seed
from cgrpo_core.policy import PolicyConfig, load_policy
from cgrpo_core.toy.tiny.policy import build_tiny_checkpoint
from tests.cgrpo_core.policy.helpers import TEST_SAMPLER, checkerboard, solid

PER_ITEM, BATCH = 2, 4  # 2 items a unit


class MeanPixel:
    """A stand-in metric set whose scores are computed independently here: the mean grey level of each
    image (and, as a second metric, the mean grey level of its references)."""

    def score(self, names, batch):
        out = {}
        if "bright" in names:
            out["bright"] = torch.tensor([np.asarray(im, dtype=np.float64).mean() for im in batch.images])
        if "ref" in names:
            means = [
                np.mean([np.asarray(r, dtype=np.float64).mean() for r in refs]) for refs in batch.references
            ]
            out["ref"] = torch.tensor(means)
        return out


NAMES = ("bright", "ref")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    folder = tmp_path_factory.mktemp("refs")
    checkerboard().save(folder / "a.png")
    solid((200, 40, 40)).save(folder / "b.png")
    solid((20, 40, 200)).save(folder / "b2.png")
    prompts = ["a dog in the snow", "a dog on the beach", "a purple can", "a can on the beach", "a red can"]
    items = [
        BenchItem("dog_a", "dog", True, k, "recontextualization", p, folder / "a.png")
        for k, p in enumerate(prompts[:2])
    ] + [
        BenchItem("can_b", "can", False, k, "property", p, folder / "b.png")
        for k, p in enumerate(prompts[2:])
    ]
    refs = load_references({"dog_a": [folder / "a.png"], "can_b": [folder / "b.png", folder / "b2.png"]})
    return items, refs


def _run(policy, bench, folder, seed=0):
    items, refs = bench
    plan = plan_images(items, PER_ITEM, seed)
    return evaluate_images(
        policy, MeanPixel(), NAMES, plan, items, refs, folder, TEST_SAMPLER, seed, BATCH, progress=False
    )


def test_the_plan_has_one_row_per_image_with_its_own_seed(bench):
    items, _ = bench
    plan = plan_images(items, 4, seed=7, model="m", row="table-2/uno-base")
    assert len(plan) == 20 and plan["item"].tolist() == [i for i in range(5) for _ in range(4)]
    assert (plan.groupby("item")["seed"].nunique() == 4).all()
    assert (
        plan.loc[6, "seed"] == image_seed(7, items[1], 2) and plan.loc[6, "file_name"] == "images/0001_2.png"
    )
    assert set(plan["model"]) == {"m"} and set(plan["kind"]) == {"recontextualization", "property"}
    with pytest.raises(ValueError, match="both"):
        plan_images([items[0], items[1], items[0]], 4, 0)
    with pytest.raises(ValueError, match="no items"):
        plan_images([], 4, 0)


def test_units_cover_the_items_in_order():
    assert work_units(5, 2) == [(0, 2), (2, 4), (4, 5)]
    assert work_units(4, 4) == [(0, 4)]
    with pytest.raises(ValueError):
        work_units(3, 0)


def test_scores_are_the_metric_of_the_saved_images(policy, bench, tmp_path):
    scores = _run(policy, bench, tmp_path)
    assert len(scores) == 10 and (tmp_path / "parts").is_dir()
    for row in scores.itertuples():
        pixels = np.asarray(Image.open(tmp_path / row.file_name).convert("RGB"), dtype=np.float64)
        assert row.bright == pytest.approx(pixels.mean())
    red, blue = (
        np.asarray(Image.open(bench[0][2].reference.parent / f), dtype=np.float64).mean()
        for f in ("b.png", "b2.png")
    )
    assert scores.loc[scores["subject"] == "can_b", "ref"].to_numpy() == pytest.approx(
        (red + blue) / 2
    )  # all photos
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_resumed_run_generates_only_what_is_missing_and_ends_identical(policy, bench, tmp_path):
    full = _run(policy, bench, tmp_path / "full")
    folder = tmp_path / "resumed"
    _run(policy, bench, folder)
    # as a kill leaves it: unit 1 (items 2, 3) half written, unit 2 (item 4) not started
    (folder / "parts" / "00002-00004.parquet").unlink()
    (folder / "parts" / "00004-00005.parquet").unlink()
    for name in ("0002_1.png", "0003_0.png", "0004_0.png", "0004_1.png"):
        (folder / "images" / name).unlink()
    kept = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (folder / "images").iterdir()}
    again = _run(policy, bench, folder)
    for p in (folder / "images").iterdir():
        if p.name in kept:
            assert (p.stat().st_ino, p.stat().st_mtime_ns) == kept[p.name], f"{p.name} was written again"
    for name in ("0002_1.png", "0003_0.png", "0004_0.png"):  # made again in a batch of the unit's size
        assert np.array_equal(
            np.asarray(Image.open(folder / "images" / name)),
            np.asarray(Image.open(tmp_path / "full" / "images" / name)),
        )
    assert again.drop(columns=[]).equals(full)  # bit-identical scores


def test_every_model_sees_the_same_noise_per_image(policy, bench, tmp_path, monkeypatch):
    other = load_policy(
        PolicyConfig(
            model_folder=str(build_tiny_checkpoint(tmp_path / "other", corpus=["another corpus"])),
            uno_lora=None,
            dtype="float32",
            lora_rank=0,
        )
    )
    seen: dict[str, list[torch.Tensor]] = {"a": [], "b": []}
    original = generation.sample
    current = "a"

    def recording(policy, cond, settings, num_samples=1, noise=None, **kw):
        seen[current].append(noise.clone())
        return original(policy, cond, settings, num_samples, noise=noise, **kw)

    monkeypatch.setattr(generation, "sample", recording)
    a = _run(policy, bench, tmp_path / "a")
    current = "b"
    b = _run(other, bench, tmp_path / "b")
    assert len(seen["a"]) == len(seen["b"]) == 3
    assert all(torch.equal(x, y) for x, y in zip(seen["a"], seen["b"], strict=True))
    assert not np.allclose(a["bright"], b["bright"])  # two models, paired images, different pixels


def test_bad_inputs_are_named(policy, bench, tmp_path):
    items, refs = bench
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        load_references({"dog_a": [broken]})
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_references({"dog_a": [tmp_path / "missing.png"]})
    folder = tmp_path / "run"
    _run(policy, bench, folder)
    (folder / "parts" / "00000-00002.parquet").unlink()
    (folder / "images" / "0001_1.png").write_bytes(b"truncated")
    with pytest.raises(ValueError, match="0001_1.png"):
        _run(policy, bench, folder)
    assert (folder / "images" / "0000_0.png").is_file()  # nothing generated is lost


def test_check_scores_finds_lost_duplicated_and_broken_images(bench):
    items, _ = bench
    plan = plan_images(items, PER_ITEM, 0)
    scores = plan.assign(bright=1.0, ref=1.0)
    check_scores(plan, scores, NAMES)
    with pytest.raises(ValueError, match="not scored"):
        check_scores(plan, scores.iloc[1:], NAMES)
    with pytest.raises(ValueError, match="more than once"):
        check_scores(plan, scores.iloc[[0, *range(len(scores))]], NAMES)
    with pytest.raises(ValueError, match="non-finite"):
        check_scores(plan, scores.assign(ref=[np.nan] + [1.0] * (len(scores) - 1)), NAMES)
