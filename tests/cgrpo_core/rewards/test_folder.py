"""Scoring a folder of images against a manifest."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from cgrpo_core.rewards.base import RewardBatch
from cgrpo_core.rewards.folder import folder_inputs_hash, read_manifest, score_folder
from tests.cgrpo_core.rewards.scenes import random_scene


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    (tmp_path / "refs").mkdir()
    for i in range(5):
        random_scene(rng)[0].save(tmp_path / "images" / f"{i}.png")
    for k in range(2):
        image, mask = random_scene(rng)
        image.save(tmp_path / "refs" / f"r{k}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "refs" / f"r{k}_mask.png")
    rows = [
        {
            "image": f"{i}.png",
            "prompt": f"a toy number {i % 2}",
            "references": "refs/r0.png|refs/r1.png",
            "subject": "toy",
            "reference_masks": "refs/r0_mask.png|",
        }
        for i in range(5)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    return tmp_path


def test_score_folder_equals_direct_reward_calls(folder, reward_set):
    frame = score_folder(
        folder / "images", folder / "manifest.csv", ["dino", "clip_t", "dino_seg"], reward_set, chunk_size=2
    )
    assert list(frame["image"]) == [f"{i}.png" for i in range(5)]
    refs = [folder / "refs/r0.png", folder / "refs/r1.png"]
    batch = RewardBatch(
        [folder / "images" / f"{i}.png" for i in range(5)],
        references=[refs] * 5,
        prompts=list(frame["prompt"]),
        subjects=["toy"] * 5,
        reference_masks=[[folder / "refs/r0_mask.png", None]] * 5,
    )
    for name in ("dino", "clip_t", "dino_seg"):
        torch.testing.assert_close(
            torch.tensor(frame[name].to_numpy(), dtype=torch.float32),
            reward_set.get(name)(batch),
            atol=1e-6,
            rtol=0,
        )


def test_manifest_formats_and_missing_columns(folder, reward_set):
    rows = [{"image": "0.png", "references": ["refs/r0.png"]}]
    (folder / "m.json").write_text(json.dumps(rows))
    assert read_manifest(folder / "m.json")["references"][0] == [str(folder / "refs/r0.png")]
    with pytest.raises(ValueError, match=r"need manifest column\(s\) \['prompt'\]"):
        score_folder(folder / "images", folder / "m.json", ["clip_t"], reward_set)
    with pytest.raises(ValueError, match="'image' column"):
        pd.DataFrame({"file": ["0.png"]}).to_csv(folder / "bad.csv", index=False)
        read_manifest(folder / "bad.csv")


def test_inputs_hash_follows_the_image_content(folder):
    before = folder_inputs_hash(folder / "images", folder / "manifest.csv")
    assert folder_inputs_hash(folder / "images", folder / "manifest.csv") == before
    random_scene(np.random.default_rng(7))[0].save(folder / "refs" / "r1.png")
    assert folder_inputs_hash(folder / "images", folder / "manifest.csv") != before
