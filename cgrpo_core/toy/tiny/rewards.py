"""Tiny random-init checkpoints of the real reward-model classes, saved in the real on-disk layouts.

Nothing can be downloaded here, so every reward loader is exercised on checkpoints built by these
functions with the same classes and ``save_pretrained`` layouts as the released weights (and the same
loaders read them): ``Dinov2Model`` + DINOv2's ``BitImageProcessor``; ``ViTModel`` (DINO v1, no pooler) +
``ViTImageProcessor``; ``CLIPModel`` + ``CLIPProcessor``; the LAION aesthetic head (a ``torch.save``d
``nn.Linear`` state dict); ``SegformerForSemanticSegmentation``; ``Owlv2ForObjectDetection`` + ``SamModel``;
and HPSv3 (tiny_hpsv3.py). :func:`build_tiny_reward_models` builds them all and returns the config that
reads them.

CLIP tokenizers are built offline and deterministically (cgrpo_core.toy.tiny.tokenizers). Sizes are
arguments: the toy profile uses larger ones than tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
from PIL import Image
from transformers import (
    BitImageProcessorPil,
    CLIPConfig,
    CLIPImageProcessorPil,
    CLIPModel,
    CLIPProcessor,
    CLIPTokenizer,
    Dinov2Config,
    Dinov2Model,
    Dinov2WithRegistersConfig,
    Dinov2WithRegistersModel,
    Owlv2Config,
    Owlv2ForObjectDetection,
    Owlv2ImageProcessorPil,
    Owlv2Processor,
    SamConfig,
    SamImageProcessorPil,
    SamModel,
    SamProcessor,
    SegformerConfig,
    SegformerForSemanticSegmentation,
    SegformerImageProcessorPil,
    ViTConfig,
    ViTImageProcessorPil,
    ViTModel,
)

from cgrpo_core.rewards.aesthetic import save_aesthetic_head
from cgrpo_core.rewards.config import (
    IMAGENET_CROP_FRACTION,
    AestheticConfig,
    EmbeddingRewardConfig,
    HPSv3Config,
    RewardModels,
    SegmenterConfig,
)
from cgrpo_core.toy.tiny.hpsv3 import build_tiny_hpsv3
from cgrpo_core.toy.tiny.tokenizers import train_clip_tokenizer

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "build_tiny_aesthetic",
    "build_tiny_clip",
    "build_tiny_dino_v1",
    "build_tiny_dinov2",
    "build_tiny_owlv2",
    "build_tiny_reward_models",
    "build_tiny_sam",
    "build_tiny_segformer",
    "clip_image_processor",
    "clip_model",
    "dino_model",
    "dino_v1_processor",
    "dinov2_processor",
]

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
DEFAULT_CORPUS = (
    "a photo of a red square",
    "a photo of a green circle",
    "a photo of a blue triangle",
    "a dog on the beach",
    "a cat in the snow",
    "a backpack in the jungle",
    "a subject",
    "a toy",
)


def dinov2_processor(image_size: int) -> BitImageProcessorPil:
    """DINOv2's image processor at input side S: shorter side S*256/224 (bicubic), centre-crop S."""
    return BitImageProcessorPil(
        size={"shortest_edge": round(image_size * 256 / 224)},
        crop_size={"height": image_size, "width": image_size},
        do_center_crop=True,
        resample=Image.Resampling.BICUBIC,
        image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD,
    )


def dino_v1_processor(image_size: int) -> ViTImageProcessorPil:
    """DINO v1's (facebook/dino-vits16) image processor at input side S: S x S bilinear."""
    return ViTImageProcessorPil(
        size={"height": image_size, "width": image_size},
        resample=Image.Resampling.BILINEAR,
        image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD,
    )


def clip_image_processor(image_size: int) -> CLIPImageProcessorPil:
    """CLIP's image processor at input side S: shorter side S (bicubic), centre-crop S."""
    return CLIPImageProcessorPil(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        resample=Image.Resampling.BICUBIC,
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    )


def dino_model(
    family: str,
    image_size: int,
    patch_size: int,
    hidden: int,
    layers: int,
    heads: int,
    seed: int,
    registers: int = 0,
) -> torch.nn.Module:
    """A randomly initialised DINO backbone of the real class: ``Dinov2Model`` (family "dinov2", or
    ``Dinov2WithRegistersModel`` with ``registers`` > 0) or a DINO v1 ``ViTModel``, no pooler ("dino_v1")."""
    vit = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads}
    vit |= {"image_size": image_size, "patch_size": patch_size}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if family == "dinov2" and registers:
            return Dinov2WithRegistersModel(
                Dinov2WithRegistersConfig(num_register_tokens=registers, mlp_ratio=2, **vit)
            )
        if family == "dinov2":
            return Dinov2Model(Dinov2Config(mlp_ratio=2, **vit))
        if family == "dino_v1":
            return ViTModel(ViTConfig(intermediate_size=2 * hidden, **vit), add_pooling_layer=False)
    raise ValueError(f"unknown DINO family {family!r}; choose 'dinov2' or 'dino_v1'")


def clip_model(
    tokenizer,
    image_size: int,
    patch_size: int,
    hidden: int,
    layers: int,
    heads: int,
    projection: int,
    seed: int,
) -> CLIPModel:
    """A randomly initialised ``CLIPModel``: towers ``hidden`` wide, the text vocabulary ``tokenizer``'s."""
    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    tower = {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": 2 * hidden,
    }
    config = CLIPConfig(
        text_config={**tower, "vocab_size": len(tokenizer), "max_position_embeddings": 77, **ids},
        vision_config={**tower, "image_size": image_size, "patch_size": patch_size},
        projection_dim=projection,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CLIPModel(config)


def build_tiny_dinov2(
    folder: str | Path,
    image_size: int = 32,
    patch_size: int = 8,
    hidden: int = 32,
    layers: int = 2,
    registers: int = 0,
    seed: int = 0,
) -> Path:
    """``Dinov2Model`` (or ``Dinov2WithRegistersModel`` with ``registers`` > 0) + DINOv2's processor."""
    folder = Path(folder)
    dino_model("dinov2", image_size, patch_size, hidden, layers, 2, seed, registers).save_pretrained(folder)
    dinov2_processor(image_size).save_pretrained(folder)
    return folder


def build_tiny_dino_v1(
    folder: str | Path,
    image_size: int = 32,
    patch_size: int = 8,
    hidden: int = 32,
    layers: int = 2,
    seed: int = 0,
) -> Path:
    """``ViTModel`` without pooler (as facebook/dino-vits16) + its processor (S x S bilinear)."""
    folder = Path(folder)
    dino_model("dino_v1", image_size, patch_size, hidden, layers, 2, seed).save_pretrained(folder)
    dino_v1_processor(image_size).save_pretrained(folder)
    return folder


def build_tiny_clip(
    folder: str | Path,
    corpus: Iterable[str] = DEFAULT_CORPUS,
    image_size: int = 32,
    patch_size: int = 8,
    hidden: int = 32,
    layers: int = 2,
    projection: int = 16,
    seed: int = 0,
) -> Path:
    """``CLIPModel`` + ``CLIPProcessor`` (CLIP's image processing at S, a CLIPTokenizer of ``corpus``)."""
    folder = Path(folder)
    tokenizer = train_clip_tokenizer(list(corpus), vocab_size=600)
    clip_model(tokenizer, image_size, patch_size, hidden, layers, 2, projection, seed).save_pretrained(folder)
    processor = CLIPProcessor(image_processor=clip_image_processor(image_size), tokenizer=tokenizer)
    processor.save_pretrained(folder)
    return folder


def build_tiny_aesthetic(
    folder: str | Path, head_file: str = "sa_0_4_vit_l_14_linear.pth", seed: int = 0, **clip_kwargs
) -> tuple[Path, Path]:
    """A tiny CLIP in ``folder/clip`` and a LAION-format head ``folder/<head_file>``: (clip dir, head dir)."""
    folder = Path(folder)
    clip_dir = build_tiny_clip(folder / "clip", seed=seed, **clip_kwargs)
    dim = CLIPConfig.from_pretrained(clip_dir).projection_dim
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        head = torch.nn.Linear(dim, 1)
    save_aesthetic_head(head, folder / head_file)
    return clip_dir, folder


def build_tiny_segformer(
    folder: str | Path, image_size: int = 64, hidden: tuple[int, int] = (8, 16), seed: int = 0
) -> Path:
    """Two-class (background, subject) ``SegformerForSemanticSegmentation`` + its image processor."""
    folder = Path(folder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = SegformerConfig(
            num_encoder_blocks=2,
            depths=[1, 1],
            sr_ratios=[2, 1],
            hidden_sizes=list(hidden),
            patch_sizes=[7, 3],
            strides=[4, 2],
            num_attention_heads=[1, 2],
            mlp_ratios=[2, 2],
            decoder_hidden_size=16,
            num_labels=2,
            id2label={0: "background", 1: "subject"},
            label2id={"background": 0, "subject": 1},
        )
        SegformerForSemanticSegmentation(config).save_pretrained(folder)
    SegformerImageProcessorPil(
        size={"height": image_size, "width": image_size}, do_reduce_labels=False
    ).save_pretrained(folder)
    return folder


def build_tiny_owlv2(
    folder: str | Path, corpus: Iterable[str] = DEFAULT_CORPUS, image_size: int = 32, seed: int = 0
) -> Path:
    """``Owlv2ForObjectDetection`` + ``Owlv2Processor`` (OWLv2 pads to a square, then resizes to S)."""
    folder = Path(folder)
    tokenizer = _owl_tokenizer(corpus)
    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = Owlv2Config(
            text_config={
                "vocab_size": len(tokenizer),
                "hidden_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 64,
                "max_position_embeddings": 16,
                **ids,
            },
            vision_config={
                "hidden_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 64,
                "image_size": image_size,
                "patch_size": 8,
            },
            projection_dim=32,  # OWLv2's class head needs projection = text width (512 in owlv2-base)
        )
        Owlv2ForObjectDetection(config).save_pretrained(folder)
    image_processor = Owlv2ImageProcessorPil(size={"height": image_size, "width": image_size})
    Owlv2Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def _owl_tokenizer(corpus: Iterable[str]) -> CLIPTokenizer:
    """A tiny CLIPTokenizer whose special tokens come last: OWL treats a query whose first token id is 0
    as padding (``query_mask = input_ids[..., 0] > 0``), and CLIP's real <|startoftext|> is 49406."""
    base = train_clip_tokenizer(list(corpus), vocab_size=600, model_max_length=16)
    specials = [base.bos_token, base.eos_token]
    order = [
        t for t, _ in sorted(base.get_vocab().items(), key=lambda kv: kv[1]) if t not in specials
    ] + specials
    merges = [
        tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
        for m in json.loads(base.backend_tokenizer.to_str())["model"]["merges"]
    ]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(order)}, merges=merges, model_max_length=16)


def build_tiny_sam(folder: str | Path, image_size: int = 64, patch_size: int = 8, seed: int = 0) -> Path:
    """``SamModel`` + ``SamProcessor`` at a small input size (SAM: longest side 1024, padded square)."""
    folder = Path(folder)
    grid = image_size // patch_size
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = SamConfig(
            vision_config={
                "hidden_size": 16,
                "output_channels": 16,
                "num_hidden_layers": 1,
                "num_attention_heads": 1,
                "image_size": image_size,
                "patch_size": patch_size,
                "window_size": 4,
                "global_attn_indexes": [0],
                "mlp_dim": 32,
                "num_pos_feats": 8,
            },
            prompt_encoder_config={
                "hidden_size": 16,
                "image_size": image_size,
                "patch_size": patch_size,
                "image_embedding_size": grid,
                "mask_input_channels": 4,
            },
            mask_decoder_config={
                "hidden_size": 16,
                "mlp_dim": 32,
                "num_attention_heads": 2,
                "iou_head_hidden_dim": 16,
            },
        )
        config.vision_config.initializer_range = 0.02  # SAM's 1e-10 default gives all-zero features here
        SamModel(config).save_pretrained(folder)
    mask_side = 4 * grid  # SAM's low-resolution masks are 4x its embedding grid
    image_processor = SamImageProcessorPil(
        size={"longest_edge": image_size},
        pad_size={"height": image_size, "width": image_size},
        mask_size={"longest_edge": mask_side},
        mask_pad_size={"height": mask_side, "width": mask_side},
    )
    SamProcessor(image_processor=image_processor).save_pretrained(folder)
    return folder


def build_tiny_reward_models(
    folder: str | Path,
    corpus: Iterable[str] = DEFAULT_CORPUS,
    segmenter: str = "segformer",
    image_size: int = 32,
    hpsv3_pixels: int = 4 * 28 * 28,
) -> RewardModels:
    """Every tiny checkpoint under ``folder`` and a :class:`RewardModels` reading them (tests, benchmarks).

    Mirrors the evaluation layout: ``dino`` is DINO v1 with the DreamBench resize/crop, ``dino_seg`` a
    DINOv2 on segmented subjects, CLIP-I/T a shared CLIP with the DreamBench resize/crop; HPSv3 runs in
    float32. ``segmenter``: "segformer" (toy profile) or "detector_sam" (OWLv2 + SAM, paper profile).
    """
    folder, corpus = Path(folder), list(corpus)
    protocol = {
        "image_prep": "resize_crop",
        "crop_fraction": IMAGENET_CROP_FRACTION,
        "interpolation": "bilinear",
    }
    clip = build_tiny_clip(folder / "clip", corpus=corpus, image_size=image_size)
    clip_cfg = EmbeddingRewardConfig(family="clip", model_id="tiny/clip", local_dir=str(clip), **protocol)
    aesthetic_clip, head_dir = build_tiny_aesthetic(
        folder / "aesthetic", corpus=corpus, image_size=image_size
    )
    base, weights = build_tiny_hpsv3(folder / "hpsv3", corpus=corpus, image_pixels=hpsv3_pixels)
    seg = SegmenterConfig(kind=segmenter, box_threshold=0.0)
    if segmenter == "segformer":
        seg = seg.model_copy(update={"segformer_dir": str(build_tiny_segformer(folder / "segformer"))})
    else:
        owl, sam = build_tiny_owlv2(folder / "owlv2", corpus=corpus), build_tiny_sam(folder / "sam")
        seg = seg.model_copy(update={"detector_dir": str(owl), "sam_dir": str(sam)})
    dino_v1 = build_tiny_dino_v1(folder / "dino_v1", image_size=image_size)
    dinov2 = build_tiny_dinov2(folder / "dinov2", image_size=image_size)
    return RewardModels(
        dino=EmbeddingRewardConfig(
            family="dino_v1", model_id="tiny/dino-v1", local_dir=str(dino_v1), **protocol
        ),
        dino_seg=EmbeddingRewardConfig(
            family="dinov2", model_id="tiny/dinov2", local_dir=str(dinov2), segment="both"
        ),
        clip_i=clip_cfg,
        clip_t=clip_cfg,
        aesthetic=AestheticConfig(clip_id="tiny/clip", clip_dir=str(aesthetic_clip), head_dir=str(head_dir)),
        hpsv3=HPSv3Config(
            base_id="tiny/qwen2-vl",
            base_dir=str(base),
            checkpoint_id="tiny/hpsv3",
            checkpoint_dir=str(weights),
            image_pixels=hpsv3_pixels,
            dtype="float32",
        ),
        segmenter=SegmenterConfig.model_validate(seg.model_dump()),
    )
