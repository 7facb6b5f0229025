"""Build the toy reward zoo: train every reward model on a toy world, write it in its real format, check it.

    models, curves, checks = train_reward_zoo(world_dir, out_dir, ZooRewardsConfig())  # the toy profile's
    RewardSet(models).score(["dino_seg", "hpsv3"], batch)      # the rewards' own loaders read them

Layout of ``out_dir`` (each folder in its real counterpart's format)::

    dinov2/       Dinov2Model + BitImageProcessor        (facebook/dinov2-*: dino_seg, SynCD scorer)
    dino_v1/      ViTModel (no pooler) + ViTImageProcessor   (facebook/dino-vits16: dino)
    clip/         CLIPModel + CLIPProcessor                  (openai/clip-vit-*: clip_i, clip_t)
    aesthetic/    sa_0_4_vit_l_14_linear.pth                 (LAION's head file, on clip/)
    segformer/    SegformerForSemanticSegmentation + processor (DINO-Seg's toy segmenter)
    hpsv3/        base/ (Qwen2-VL config, tokenizer, image processor) + HPSv3.safetensors
    reward_zoo.json   key, curves, checks, wall times

The corpus world (CorpusConfig) and the checks' held-out world are generated in a scratch folder inside
``out_dir`` and removed afterwards (both are reproducible from their seeds).

:func:`zoo_reward_models` gives the :class:`RewardModels` reading a zoo folder (also after it moved): as
:func:`~cgrpo_core.toy.tiny.rewards.build_tiny_reward_models`, ``dino`` is DINO v1 with the DreamBench
resize/crop protocol, ``dino_seg`` the DINOv2 on segmented subjects, CLIP-I/T the shared CLIP with that
protocol, HPSv3 in float32. Model ids carry the zoo's content key (``toy-zoo/<key>/<model>``) so that
results computed with the zoo are hashed by what trained it.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from cgrpo_core.rewards.config import (
    IMAGENET_CROP_FRACTION,
    AestheticConfig,
    EmbeddingRewardConfig,
    RewardModels,
    SegmenterConfig,
)
from cgrpo_core.schema import config_hash
from cgrpo_core.store import atomic_write_json, code_version, file_hash
from cgrpo_core.toy.zoo.rewards.config import ZooRewardsConfig, hpsv3_config
from cgrpo_core.training.optim import Curve

if TYPE_CHECKING:
    from cgrpo_core.rewards.segmentation import Segmenter
    from cgrpo_core.toy.zoo.rewards.data import ViewData
    from cgrpo_core.toy.zoo.rewards.hpsv3_training import HPSv3Data

# The trainers and the checks (transformers) are imported where a zoo is trained: reading a built zoo
# (zoo_reward_models, which every toy run calls) stays light.

__all__ = ["MANIFEST", "reward_zoo_key", "train_reward_zoo", "zoo_reward_models"]

MANIFEST = "reward_zoo.json"
DREAMBENCH_PROTOCOL = {"image_prep": "resize_crop", "crop_fraction": IMAGENET_CROP_FRACTION}


def reward_zoo_key(world_dir: str | Path, cfg: ZooRewardsConfig) -> str:
    """Content key of a reward zoo: its config, the toy world (world.json fixes it) and the code version."""
    world = file_hash(Path(world_dir) / "world.json")
    return config_hash(cfg, {"world": world, "code": code_version(__name__)})


def zoo_reward_models(folder: str | Path) -> RewardModels:
    """The :class:`RewardModels` reading the reward zoo in ``folder`` (its manifest names key and sizes)."""
    folder = Path(folder).resolve()
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: build the reward zoo first (train_reward_zoo)")
    info = json.loads(manifest.read_text(encoding="utf-8"))
    key = info["key"]

    def embedding(family: str, name: str, **kw) -> EmbeddingRewardConfig:
        return EmbeddingRewardConfig(
            family=family, model_id=f"toy-zoo/{key}/{name}", local_dir=str(folder / name), **kw
        )

    clip = embedding("clip", "clip", **DREAMBENCH_PROTOCOL)
    return RewardModels(
        dino=embedding("dino_v1", "dino_v1", **DREAMBENCH_PROTOCOL),
        dino_seg=embedding("dinov2", "dinov2", segment="both"),
        clip_i=clip,
        clip_t=clip,
        aesthetic=AestheticConfig(
            clip_id=f"toy-zoo/{key}/clip", clip_dir=str(folder / "clip"), head_dir=str(folder / "aesthetic")
        ),
        hpsv3=hpsv3_config(folder / "hpsv3", info["hpsv3_image_pixels"], f"toy-zoo/{key}/hpsv3"),
        segmenter=SegmenterConfig(
            kind="segformer", segformer_id=f"toy-zoo/{key}/segformer", segformer_dir=str(folder / "segformer")
        ),
    )


def _trainers(
    cfg: ZooRewardsConfig, out: Path, progress: bool
) -> dict[str, tuple[str, Callable[[ViewData], Curve]]]:
    """name -> (data it learns from, train(data)), in dependency order (the aesthetic head needs the CLIP).
    Data: "syncd", the world's toy SynCD; "captions", that plus the corpus world (CorpusConfig); "hpsv3",
    the captions with both worlds (the HPSv3 renders their subjects as DreamBench prompts ask)."""
    from cgrpo_core.toy.zoo.rewards.aesthetic_head import train_aesthetic_head
    from cgrpo_core.toy.zoo.rewards.clip_training import train_clip
    from cgrpo_core.toy.zoo.rewards.dino_training import train_dino_v1, train_dinov2
    from cgrpo_core.toy.zoo.rewards.hpsv3_training import train_hpsv3
    from cgrpo_core.toy.zoo.rewards.segmenter_training import train_segmenter

    return {
        "segmenter": ("syncd", lambda d: train_segmenter(d, cfg.segmenter, out / "segformer", progress)),
        "dinov2": (
            "syncd",
            lambda d: train_dinov2(d, cfg.dinov2, out / "dinov2", progress, _toy_segmenter(out)),
        ),
        "dino_v1": ("syncd", lambda d: train_dino_v1(d, cfg.dino_v1, out / "dino_v1", progress)),
        "clip": ("captions", lambda d: train_clip(d, cfg.clip, cfg.degradation, out / "clip", progress)),
        "aesthetic": (
            "syncd",
            lambda d: train_aesthetic_head(
                d, out / "clip", cfg.aesthetic, cfg.degradation, out / "aesthetic", progress
            ),
        ),
        "hpsv3": ("hpsv3", lambda d: train_hpsv3(d, cfg.hpsv3, cfg.degradation, out / "hpsv3", progress)),
    }


def _toy_segmenter(out: Path) -> Segmenter:
    """The toy segmenter trained into ``out`` (DINO-Seg's, which the toy DINOv2 learns to read)."""
    from cgrpo_core.rewards.segmentation import load_segmenter

    return load_segmenter(SegmenterConfig(kind="segformer", segformer_dir=str(out / "segformer")))


def _training_data(world_dir: Path, scratch: Path, cfg: ZooRewardsConfig) -> dict[str, ViewData | HPSv3Data]:
    from cgrpo_core.toy.zoo.rewards.data import merge_views, other_world, syncd_views
    from cgrpo_core.toy.zoo.rewards.hpsv3_training import HPSv3Data

    syncd = syncd_views(world_dir)
    if not cfg.corpus.sets:
        return {"syncd": syncd, "captions": syncd, "hpsv3": HPSv3Data(syncd, (world_dir,))}
    corpus = other_world(world_dir, scratch / "corpus_world", cfg.corpus.seed, cfg.corpus.sets, cfg.threads)
    captions = merge_views(syncd, syncd_views(corpus))
    return {"syncd": syncd, "captions": captions, "hpsv3": HPSv3Data(captions, (world_dir, corpus))}


def train_reward_zoo(
    world_dir: str | Path, out_dir: str | Path, cfg: ZooRewardsConfig, progress: bool = True
) -> tuple[RewardModels, dict[str, Curve], dict[str, float]]:
    """Train every reward model of ``cfg`` on the toy SynCD of ``world_dir``, write them into ``out_dir``
    (module docstring) and check them on held-out data.

    Returns the :class:`RewardModels` reading them, the training curve of each model ({name: [(step,
    loss)]}) and the check metrics (checks.py); the manifest also records each model's wall time.
    Deterministic for a config on one machine and thread count (``cfg.threads``).
    """
    from cgrpo_core.toy.zoo.rewards.checks import run_reward_checks

    out, key, world_dir = Path(out_dir), reward_zoo_key(world_dir, cfg), Path(world_dir)
    out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        with tempfile.TemporaryDirectory(dir=out, prefix=".worlds-") as scratch:
            start = time.perf_counter()
            data = _training_data(world_dir, Path(scratch), cfg)
            curves, seconds = {}, {"seconds_data": time.perf_counter() - start}
            for name, (source, train) in _trainers(cfg, out, progress).items():
                start = time.perf_counter()
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(0)  # any dropout a model has draws from here
                    curves[name] = train(data[source])
                seconds[f"seconds_{name}"] = time.perf_counter() - start
            manifest = {"key": key, "hpsv3_image_pixels": cfg.hpsv3.image_pixels}
            atomic_write_json(out / MANIFEST, manifest)
            models = zoo_reward_models(out)
            start = time.perf_counter()
            checks = run_reward_checks(
                models, world_dir, Path(scratch) / "check_world", cfg.checks, cfg.degradation
            )
            seconds["seconds_checks"] = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    atomic_write_json(out / MANIFEST, {**manifest, "checks": checks, "seconds": seconds, "curves": curves})
    return models, curves, checks
