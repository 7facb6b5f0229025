"""Every zoo model is written in its real counterpart's format and read by the rewards' own loaders."""

import json
import shutil

import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import CLIPConfig, Dinov2Model, ViTModel

from cgrpo_core.rewards.aesthetic import load_aesthetic_head
from cgrpo_core.rewards.base import RewardBatch
from cgrpo_core.rewards.registry import RewardSet
from cgrpo_core.toy.zoo.rewards.build import MANIFEST, zoo_reward_models
from cgrpo_core.toy.zoo.rewards.data import syncd_views

SCORED = ("dino", "dino_seg", "clip_i", "clip_t", "hpsv3", "aesthetic")


def test_layout_is_the_real_one(zoo):
    folder = zoo.folder
    assert isinstance(Dinov2Model.from_pretrained(folder / "dinov2"), Dinov2Model)
    vit = ViTModel.from_pretrained(folder / "dino_v1", add_pooling_layer=False)
    assert vit.pooler is None  # as facebook/dino-vits16
    for name in ("dinov2", "dino_v1", "segformer"):
        assert (folder / name / "config.json").is_file() and (
            folder / name / "preprocessor_config.json"
        ).is_file()
    for name in ("config.json", "processor_config.json", "tokenizer_config.json"):  # CLIPProcessor, v5
        assert (folder / "clip" / name).is_file()
    # LAION's head: a torch.save'd Linear(P, 1) state dict, P = the toy CLIP's projection size
    dim = CLIPConfig.from_pretrained(folder / "clip").projection_dim
    assert dim == zoo.cfg.clip.projection
    head = load_aesthetic_head(folder / "aesthetic" / "sa_0_4_vit_l_14_linear.pth", dim)
    assert tuple(head.weight.shape) == (1, dim)
    # HPSv3's released file: the whole model in the transformers 4.4x key naming, with rm_head and lm_head
    keys = set(load_file(str(folder / "hpsv3" / "HPSv3.safetensors")))
    assert {k.split(".")[0] for k in keys} == {"visual", "model", "lm_head", "rm_head"}
    assert {"rm_head.0.weight", "rm_head.5.weight", "model.embed_tokens.weight"} <= keys
    assert (folder / "hpsv3" / "base" / "config.json").is_file()
    assert "<|vision_start|>" in (folder / "hpsv3" / "base" / "chat_template.jinja").read_text()


def test_every_reward_loads_and_scores(zoo, small_world):
    views = syncd_views(small_world)
    images = [views.pil(i) for i in range(4)]
    batch = RewardBatch(
        images, references=[[views.pil(5)]] * 4, prompts=views.captions[:4], subjects=["toy"] * 4
    )
    scores = RewardSet(zoo.models).score(SCORED, batch)
    for name, values in scores.items():
        assert values.shape == (4,) and torch.isfinite(values).all(), name
    # the same image as its own reference scores exactly 1 (cosine rewards)
    same = RewardBatch(images[:1], references=[[images[0]]], subjects=["toy"])
    for name in ("dino", "dino_seg", "clip_i"):
        torch.testing.assert_close(RewardSet(zoo.models).score([name], same)[name], torch.ones(1))


def test_model_ids_carry_the_zoo_key_and_a_moved_zoo_still_loads(zoo, tmp_path):
    key = json.loads((zoo.folder / MANIFEST).read_text())["key"]
    assert zoo.models.dino_seg.model_id == f"toy-zoo/{key}/dinov2"
    assert zoo.models.hpsv3.checkpoint_id == f"toy-zoo/{key}/hpsv3"
    assert zoo.models.segmenter.kind == "segformer" and zoo.models.dino_seg.segment == "both"
    moved = tmp_path / "moved"
    shutil.copytree(zoo.folder, moved)
    models = zoo_reward_models(moved)
    assert models.dino_seg.local_dir == str(moved.resolve() / "dinov2")
    batch = RewardBatch([Image.new("RGB", (32, 32))], prompts=["a dog"])
    assert torch.isfinite(RewardSet(models).score(["hpsv3"], batch)["hpsv3"]).all()


def test_manifest_records_curves_checks_and_times(zoo):
    manifest = json.loads((zoo.folder / MANIFEST).read_text())
    cfg = zoo.cfg
    steps = {
        "dinov2": cfg.dinov2.steps,
        "dino_v1": cfg.dino_v1.steps,
        "clip": cfg.clip.steps,
        "aesthetic": cfg.aesthetic.steps,
        "segmenter": cfg.segmenter.steps,
        "hpsv3": cfg.hpsv3.short_steps + cfg.hpsv3.steps,
    }
    assert {k: len(v) for k, v in zoo.curves.items()} == steps
    assert [s for s, _ in zoo.curves["clip"]] == list(range(cfg.clip.steps))
    assert manifest["checks"] == zoo.checks and set(manifest["seconds"]) >= {f"seconds_{k}" for k in steps}
    assert not any(p.name.startswith(".worlds") for p in zoo.folder.iterdir())  # scratch worlds removed
