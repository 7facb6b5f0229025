"""Toy HPSv3: a tiny Qwen2-VL with HPSv3's reward head, trained to rank toy (image, prompt) pairs.

HPSv3 (Ma et al. 2025) is Qwen2-VL-7B-Instruct plus a ``<|Reward|>`` token and an MLP head giving (mu,
sigma), trained on human preference pairs with an uncertainty-aware ranking loss. The toy one has the same
classes, prompt, head and file layout (read by :func:`~cgrpo_core.rewards.hpsv3.load_hpsv3_model`):

- base folder: a tiny ``Qwen2VLConfig``, a byte-level BPE ``Qwen2Tokenizer`` learned from HPSv3's
  instruction with the toy captions and DreamBench prompts filled in (rewards' ``train_qwen2_tokenizer``,
  Qwen2-VL's chat template) and a ``Qwen2VLImageProcessor``;
- weights: ``HPSv3.safetensors``, the whole reward model's state dict in the released (transformers 4.4x)
  key naming, with ``lm_head``;
- training data, the toy stand-in for human preferences: a clean toy SynCD view with its own caption is
  preferred over the same image with another set's caption, over the same image with another view's caption
  of its own set (same subject, another scene: the prompt-following signal) and over a degraded copy with
  the true caption (the visual-quality signal);
- loss: Bradley-Terry on mu, ``-log sigmoid(mu_win - mu_lose)`` (HPSv3's loss also learns sigma; the
  reward reads only mu). The head's mu starts at ``score_offset`` so scores sit on HPSv3's scale.

Training runs the reward's own input path (:meth:`HPSv3.inputs`: resize to ``image_pixels``, chat
template, placeholder expansion) on the model as the loader builds it, so the saved file scores exactly
as trained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file
from tqdm.auto import tqdm
from transformers import Qwen2VLConfig, Qwen2VLImageProcessor, Qwen2VLModel

from cgrpo_core.rewards.config import HPSv3Config
from cgrpo_core.rewards.hpsv3 import HPSv3, HPSv3Model, load_hpsv3_model, reward_head
from cgrpo_core.rewards.hpsv3_prompt import INSTRUCTION, REWARD_SUFFIX
from cgrpo_core.rewards.tiny_hpsv3 import QWEN2_VL_CHAT_TEMPLATE, train_qwen2_tokenizer
from cgrpo_core.zoo.common import Curve, lr_factor
from cgrpo_core.zoo.reward_config import DegradationConfig, HPSv3TrainConfig
from cgrpo_core.zoo.reward_data import ViewData, degrade_view, world_corpus

__all__ = ["WEIGHTS_FILE", "build_hpsv3", "hpsv3_config", "released_state", "train_hpsv3"]

WEIGHTS_FILE = "HPSv3.safetensors"
SHORT_TAIL = 4  # instruction tokens kept before the prompt in the short form ("Textual prompt -")
SPECIAL_IDS = (
    ("image_token_id", "<|image_pad|>"),
    ("video_token_id", "<|video_pad|>"),
    ("vision_start_token_id", "<|vision_start|>"),
    ("vision_end_token_id", "<|vision_end|>"),
)


def hpsv3_config(folder: str | Path, image_pixels: int, model_id: str = "toy/hpsv3") -> HPSv3Config:
    """The rewards' config reading a toy HPSv3 in ``folder`` (base/ + HPSv3.safetensors), in float32."""
    folder = Path(folder)
    return HPSv3Config(
        base_id=f"{model_id}-base",
        base_dir=str(folder / "base"),
        checkpoint_id=model_id,
        checkpoint_dir=str(folder),
        image_pixels=image_pixels,
        dtype="float32",
    )


def _qwen2_vl_config(tokenizer, cfg: HPSv3TrainConfig) -> Qwen2VLConfig:
    half = cfg.hidden // cfg.heads // 2  # rotary frequencies per head, split over (time, height, width)
    special = {name: tokenizer.convert_tokens_to_ids(token) for name, token in SPECIAL_IDS}
    return Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer) + 1,  # + <|Reward|>, added by the HPSv3 loader
            "hidden_size": cfg.hidden,
            "intermediate_size": 2 * cfg.hidden,
            "num_hidden_layers": cfg.layers,
            "num_attention_heads": cfg.heads,
            "num_key_value_heads": 1,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1e6,
                "mrope_section": [half // 4, 3 * half // 8, 3 * half // 8],  # Qwen2-VL-7B: 16, 24, 24
            },
            "bos_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "depth": cfg.vision_depth,
            "embed_dim": cfg.vision_dim,
            "hidden_size": cfg.hidden,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        **special,
    )


def released_state(model: HPSv3Model) -> dict[str, torch.Tensor]:
    """The reward model's state dict as HPSv3 releases it: ``visual.*``, ``model.*`` (language model),
    ``lm_head.weight`` (here the input embeddings; unused for a score), ``rm_head.*``."""
    state = {}
    for key, value in model.backbone.state_dict().items():
        name = key if key.startswith("visual.") else "model." + key.removeprefix("language_model.")
        state[name] = value.detach().contiguous()
    state["lm_head.weight"] = state["model.embed_tokens.weight"].clone()
    state |= {f"rm_head.{k}": v.detach().contiguous() for k, v in model.head.state_dict().items()}
    return state


def build_hpsv3(folder: str | Path, train: HPSv3TrainConfig, corpus: list[str]) -> Path:
    """Write a randomly initialised toy HPSv3 into ``folder`` (base/ + HPSv3.safetensors); returns folder."""
    folder, base = Path(folder), Path(folder) / "base"
    texts = [INSTRUCTION.format(text_prompt=t) + REWARD_SUFFIX for t in corpus] + [
        "You are a helpful assistant."
    ]
    tokenizer = train_qwen2_tokenizer(texts, vocab_size=train.vocab_size)
    tokenizer.chat_template = QWEN2_VL_CHAT_TEMPLATE
    tokenizer.save_pretrained(base)
    Qwen2VLImageProcessor(
        min_pixels=train.image_pixels // 4,
        max_pixels=train.image_pixels * 4,
        patch_size=14,
        merge_size=2,
        temporal_patch_size=2,
    ).save_pretrained(base)
    config = _qwen2_vl_config(tokenizer, train)
    config.save_pretrained(base)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(train.seed)
        model = HPSv3Model(Qwen2VLModel(config), reward_head(train.hidden), len(tokenizer))
    with torch.no_grad():
        model.head[5].bias[0] += train.score_offset  # mu starts on HPSv3's scale
    save_file(released_state(model), str(folder / WEIGHTS_FILE))
    return folder


def _negative(i: int, kind: int, data: ViewData, rng: np.random.Generator) -> int:
    """The view whose caption is paired with view i's image as a loser (kind 0: another set's view,
    kind 1: another view of i's set with a different caption, falling back to kind 0)."""
    if kind == 1:
        mates = [
            j for j in np.flatnonzero(data.labels == data.labels[i]) if data.captions[j] != data.captions[i]
        ]
        if mates:
            return int(mates[int(rng.integers(len(mates)))])
    others = np.flatnonzero(data.labels != data.labels[i])
    return int(others[int(rng.integers(len(others)))])


def _preferences(data, degraded, cfg: HPSv3TrainConfig, rng) -> tuple[list, list]:
    """One step's (winner, loser) (image, prompt) lists, ``pairs_per_step`` of each."""
    shares = np.asarray(cfg.negatives) / sum(cfg.negatives)
    winners, losers = [], []
    for i in rng.integers(len(data), size=cfg.pairs_per_step).tolist():
        kind = int(rng.choice(3, p=shares))
        winners.append((data.pil(i), data.captions[i]))
        if kind == 2:
            losers.append((degraded[i], data.captions[i]))
        else:
            losers.append((data.pil(i), data.captions[_negative(i, kind, data, rng)]))
    return winners, losers


def _lr_factor(step: int, cfg: HPSv3TrainConfig) -> float:
    """Warm-up + cosine over the short phase, then again (restart) over the real-input phase."""
    if step < cfg.short_steps:
        return lr_factor(step, cfg.short_steps, cfg.warmup_steps)
    return lr_factor(step - cfg.short_steps, cfg.steps, min(cfg.warmup_steps, cfg.steps // 4))


def instruction_span(scorer: HPSv3) -> tuple[int, int]:
    """Token columns [start, stop) of HPSv3's fixed instruction text (after the image, before its last
    words "Textual prompt -"): the same in every sequence, as every image has the same token count."""
    image = Image.new("RGB", (28, 28))
    probes = [scorer.inputs([(image, word)])["input_ids"][0] for word in ("a", "the")]
    common = int((probes[0][: len(probes[1])] != probes[1][: len(probes[0])]).int().argmax())  # prompt start
    vision_end = scorer.model.backbone.config.vision_end_token_id
    start = int((probes[0] == vision_end).int().argmax()) + 1
    return start, common - SHORT_TAIL


def short_inputs(scorer: HPSv3, pairs: list[tuple[Image.Image, str]], span: tuple[int, int]) -> dict:
    """HPSv3's real input with the instruction's fixed tokens (``span``) left out but every other token at
    its real 3-D rotary position (the warm-up curriculum's short form): the image, "Textual prompt - ",
    the prompt and the reward suffix, ~10x shorter, relative positions as in the real input."""
    full = scorer.inputs(pairs)
    positions, _ = scorer.model.backbone.get_rope_index(
        full["input_ids"],
        mm_token_type_ids=full["mm_token_type_ids"],
        image_grid_thw=full["image_grid_thw"],
        attention_mask=full["attention_mask"],
    )  # (3, B, L)
    keep = torch.ones(full["input_ids"].shape[1], dtype=torch.bool)
    keep[span[0] : span[1]] = False
    short = {k: full[k][:, keep] for k in ("input_ids", "attention_mask", "mm_token_type_ids")}
    return {
        **short,
        "pixel_values": full["pixel_values"],
        "image_grid_thw": full["image_grid_thw"],
        "position_ids": positions[:, :, keep],
    }


def train_hpsv3(
    data: ViewData,
    cfg: HPSv3TrainConfig,
    degradation: DegradationConfig,
    folder: str | Path,
    progress: bool = True,
) -> Curve:
    """Build, train (Bradley-Terry on mu) and save the toy HPSv3 in ``folder``; returns the (step, loss)
    curve: ``short_steps`` on the short form first, then ``steps`` on HPSv3's real input."""
    reward_cfg = hpsv3_config(build_hpsv3(folder, cfg, world_corpus(list(data.captions))), cfg.image_pixels)
    model, processor = load_hpsv3_model(reward_cfg)
    scorer = HPSv3(model, processor, reward_cfg, "cpu")
    rng = np.random.default_rng([cfg.seed, 13])
    degraded = [Image.fromarray(degrade_view(data.images[i], rng, degradation)[0]) for i in range(len(data))]
    total = cfg.short_steps + cfg.steps
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, cfg))
    span = instruction_span(scorer)
    model.train()
    curve: Curve = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # the head's dropout
        for step in tqdm(range(total), desc="toy hpsv3", disable=not progress):
            pairs = sum(_preferences(data, degraded, cfg, rng), [])  # P winners, then their P losers
            inputs = short_inputs(scorer, pairs, span) if step < cfg.short_steps else scorer.inputs(pairs)
            mu = model(**inputs)[:, 0]  # (2P,)
            loss = -F.logsigmoid(mu[: cfg.pairs_per_step] - mu[cfg.pairs_per_step :]).mean()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            schedule.step()
            curve.append((step, float(loss.detach())))
    model.eval()
    save_file(released_state(model), str(Path(folder) / WEIGHTS_FILE))
    return curve
