"""Toy CLIP: a ``CLIPModel`` trained with CLIP's contrastive loss on toy SynCD images and their captions.

It fills CLIP-I (image-image cosine) and CLIP-T (image-text cosine), and its image embedding carries the
LAION-format aesthetic head (aesthetic.py). Deviations from OpenAI's CLIP, which saw 400 M web pairs:

- data: the toy SynCD's views and captions (SynCD-style scene descriptions and DreamBench-style edit
  prompts); the tokenizer is learned from those captions plus every DreamBench prompt of every toy class
  (``train_clip_tokenizer``, deterministic), so ToyBench's prompts tokenise into known words;
- quality: a share of each batch shows views twice, clean with their caption and degraded with the caption
  saying so ("a blurry noisy photo of a red dog ...", see :data:`QUALITY_PHRASES`), the toy stand-in for
  the quality words of web captions; as the twins are each other's hardest negatives, the image embedding
  must carry quality, and a linear aesthetic head can read it;
- augmentation: random zoom and shift only (no flips: captions say "on the left").

Images are prepared as the rewards prepare them: the checkpoint's ``CLIPImageProcessor`` (shorter side S
bicubic, centre-crop S); the random zoom also covers the DreamBench resize-256/crop-224 protocol. Saved
with ``save_pretrained`` next to a ``CLIPProcessor`` (tokenizer + image processor), the layout of
openai/clip-vit-base-patch32.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm
from transformers import CLIPModel, CLIPProcessor, CLIPTokenizer

from cgrpo_core.rewards.preprocessing import prepare_pixels
from cgrpo_core.toy.tiny.rewards import clip_image_processor, clip_model
from cgrpo_core.toy.tiny.tokenizers import train_clip_tokenizer
from cgrpo_core.toy.world.backgrounds import CONTEXTS
from cgrpo_core.toy.world.subjects import CLASSES
from cgrpo_core.toy.zoo.rewards.config import ClipTrainConfig, DegradationConfig
from cgrpo_core.toy.zoo.rewards.data import ViewData, degrade_view, world_corpus
from cgrpo_core.toy.zoo.rewards.dino_training import augment
from cgrpo_core.training.optim import Curve, adamw, optimizer_step, warmup_cosine

__all__ = ["QUALITY_PHRASES", "build_clip", "caption_variants", "quality_caption", "train_clip"]

# degradation -> how a caption says it (prefixed to the scene caption)
QUALITY_PHRASES = {
    "blur": "a blurry noisy photo of",
    "blocky": "a pixelated noisy photo of",
    "washed": "a washed out noisy photo of",
}
AUGMENT_MIN_SCALE, AUGMENT_MAX_SHIFT = 0.85, 0.05


_CONTEXT = "|".join(re.escape(phrase) for phrase in sorted(CONTEXTS, key=len, reverse=True))
_CLASS = "|".join(re.escape(name) for name in sorted(CLASSES, key=len, reverse=True))
_SCENE = re.compile(rf"^(?P<subject>.+?) (?P<context>{_CONTEXT})(?P<rest>.*)$")


def caption_variants(caption: str) -> list[str]:
    """The caption and shorter captions that are still true of its image (toy SynCD grammar, see
    ``toy.world.prompts.syncd_caption``): without the position, without the companion, the subject alone,
    the class in the scene. ``"a red round dog in the snow next to a ball, on the left"`` gives also
    ``"... next to a ball"``, ``"... in the snow, on the left"``, ``"a red round dog"``, ``"a dog in the
    snow"``. A caption that names no toy scene (an edit prompt) is its only variant."""
    found = _SCENE.match(caption)
    if found is None:
        return [caption]
    subject, context, rest = found["subject"], found["context"], found["rest"]
    variants = [caption, f"{subject} {context}{re.sub(r', on the (left|right)$', '', rest)}"]
    variants += [f"{subject} {context}{re.sub(r' next to an? [a-z]+', '', rest)}", subject]
    names = re.findall(rf"\b({_CLASS})\b", subject)  # the last: "a cartoon drawing of a dog" is a dog
    if names:
        variants += [f"a {names[-1]} {context}", f"a {names[-1]}"]
    return list(dict.fromkeys(variants))


def quality_caption(caption: str, degradation: str) -> str:
    """``"a red dog in the snow"`` + blur -> ``"a blurry noisy photo of a red dog in the snow"``."""
    return f"{QUALITY_PHRASES[degradation]} {caption}"


def build_clip(cfg: ClipTrainConfig, corpus: list[str]) -> tuple[CLIPModel, CLIPProcessor]:
    """A randomly initialised ``CLIPModel`` of ``cfg``'s sizes and its processor (tokenizer of ``corpus``)."""
    tokenizer = train_clip_tokenizer(corpus, vocab_size=cfg.vocab_size)
    model = clip_model(
        tokenizer, cfg.image_size, cfg.patch_size, cfg.hidden, cfg.layers, cfg.heads, cfg.projection, cfg.seed
    )
    return model, CLIPProcessor(image_processor=clip_image_processor(cfg.image_size), tokenizer=tokenizer)


def _tokens(tokenizer: CLIPTokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    enc = tokenizer(texts, padding=True, truncation=True, max_length=77, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]  # (N, L) each


def _training_pairs(
    data: ViewData, processor: CLIPProcessor, degradation: DegradationConfig, seed: int
) -> tuple[torch.Tensor, list[list[int]], list[int], torch.Tensor, torch.Tensor]:
    """Pixels [2, N, 3, S, S] (clean, degraded copy); per view the text indices of its caption variants
    and of its degraded copy's quality caption; token ids and attention masks of every text [T, L]."""
    rng = np.random.default_rng([seed, 7])
    degraded, texts, variants, quality = [], [], [], []
    for i in range(len(data)):
        image, kind = degrade_view(data.images[i], rng, degradation)
        degraded.append(Image.fromarray(image))
        options = caption_variants(data.captions[i])
        variants.append(list(range(len(texts), len(texts) + len(options))))
        texts += options
        quality.append(len(texts))
        texts.append(quality_caption(data.captions[i], kind))
    clean = [data.pil(i) for i in range(len(data))]
    pixels = torch.stack(
        [
            prepare_pixels(x, processor.image_processor, "processor", 1.0, "bilinear")
            for x in (clean, degraded)
        ]
    )
    ids, mask = _tokens(processor.tokenizer, texts)
    return pixels, variants, quality, ids, mask


def _pick_texts(
    variant: torch.Tensor, index: torch.Tensor, variants: list, quality: list, share: float, gen
) -> torch.Tensor:
    """Text index per sampled view: the quality caption of a degraded copy, else with probability
    ``share`` a random caption variant, else the full caption."""
    draws = torch.rand(len(index), 2, generator=gen)  # (B, 2)
    out = []
    for (u, w), v, i in zip(draws.tolist(), variant.tolist(), index.tolist(), strict=True):
        options = variants[i]
        out.append(quality[i] if v else options[int(w * len(options))] if u < share else options[0])
    return torch.tensor(out)


def train_clip(
    data: ViewData,
    cfg: ClipTrainConfig,
    degradation: DegradationConfig,
    folder: str | Path,
    progress: bool = True,
) -> Curve:
    """Train the toy CLIP on ``data`` (CLIP's symmetric InfoNCE with its learned temperature); save model
    and processor in ``folder``; returns (step, loss) per step."""
    model, processor = build_clip(cfg, world_corpus(list(data.captions)) + list(QUALITY_PHRASES.values()))
    pixels, variants, quality, ids, masks = _training_pairs(data, processor, degradation, cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    optimizer, schedule = adamw(
        model.parameters(), cfg.learning_rate, cfg.weight_decay, warmup_cosine(cfg.steps, cfg.warmup_steps)
    )
    batch = min(cfg.batch_size, len(data))
    model.train()
    curve: Curve = []
    for step in tqdm(range(cfg.steps), desc="toy clip", disable=not progress):
        twins = round(batch * cfg.degraded_share)  # views shown clean and degraded in the same batch
        index = torch.randperm(len(data), generator=gen)[: batch - twins]
        index = torch.cat([index, index[:twins]])  # (B,)
        variant = (torch.arange(batch) >= batch - twins).long()  # (B,): 1 = the degraded twin
        images = augment(pixels[variant, index], gen, AUGMENT_MIN_SCALE, AUGMENT_MAX_SHIFT, flip=False)
        texts = _pick_texts(variant, index, variants, quality, cfg.variant_share, gen)  # (B,)
        attention = masks[texts]  # (B, L)
        length = int(attention.sum(1).max())
        out = model(
            input_ids=ids[texts][:, :length],
            attention_mask=attention[:, :length],
            pixel_values=images,
            return_loss=True,
        )
        optimizer_step(optimizer, schedule, out.loss, model.parameters())
        curve.append((step, float(out.loss.detach())))
    model.eval()
    Path(folder).mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return curve
