"""Tiny HPSv3 checkpoints: a Qwen2-VL base folder plus a released-format weights file (tests, toy profile).

The base folder holds what the HPSv3 loader reads from Qwen2-VL-7B-Instruct: ``config.json`` (a tiny
``Qwen2VLConfig``), a ``Qwen2Tokenizer`` with Qwen2-VL's special tokens and chat template (byte-level BPE
learned offline and deterministically from a corpus) and a ``Qwen2VLImageProcessor``. The weights file
``HPSv3.safetensors`` is the whole reward model's state dict, like the released one, with the token
embeddings resized to the tokenizer plus <|Reward|>, in the 4.4x key naming (or the 5.x one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import pre_tokenizers
from transformers import Qwen2Tokenizer, Qwen2VLConfig, Qwen2VLImageProcessorPil, Qwen2VLModel

from cgrpo_core.rewards.hpsv3 import reward_head
from cgrpo_core.rewards.hpsv3_prompt import INSTRUCTION, REWARD_SUFFIX
from cgrpo_core.toy.tiny.tokenizers import learn_bpe

__all__ = ["QWEN2_VL_CHAT_TEMPLATE", "build_tiny_hpsv3", "train_qwen2_tokenizer"]

DEFAULT_CORPUS = ("a photo of a red square", "a dog on the beach", "a cat in the snow", "a toy")

# Qwen2-VL's chat format: a default system turn, images as <|vision_start|><|image_pad|><|vision_end|>.
QWEN2_VL_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QWEN2_VL_SPECIAL = (
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)


def train_qwen2_tokenizer(corpus: Iterable[str], vocab_size: int = 800) -> Qwen2Tokenizer:
    """A byte-level BPE ``Qwen2Tokenizer`` learned from ``corpus`` (most frequent pair first, ties by
    order), with Qwen2-VL's special tokens; deterministic."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    probe = Qwen2Tokenizer(vocab={c: i for i, c in enumerate(alphabet)}, merges=[])
    pre = probe.backend_tokenizer.pre_tokenizer
    words = Counter(w for text in corpus for w, _ in pre.pre_tokenize_str(text))
    vocab, merges = learn_bpe({tuple(w): n for w, n in sorted(words.items())}, alphabet, vocab_size)
    tokenizer = Qwen2Tokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=merges)
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN2_VL_SPECIAL)})
    return tokenizer


def _old_naming(key: str) -> str:
    """transformers 5.x Qwen2VLModel keys -> the 4.45 Qwen2VLForConditionalGeneration naming."""
    return key if key.startswith("visual.") else "model." + key.removeprefix("language_model.")


def build_tiny_hpsv3(
    folder: str | Path,
    corpus: Iterable[str] = DEFAULT_CORPUS,
    hidden: int = 32,
    image_pixels: int = 4 * 28 * 28,
    naming: str = "v4",
    seed: int = 0,
) -> tuple[Path, Path]:
    """A tiny HPSv3: ``folder/base`` (Qwen2-VL config + processor files) and ``folder/HPSv3.safetensors``.

    As the released file, the state dict holds the whole reward model, with the token embeddings
    resized to the tokenizer plus <|Reward|>; ``naming`` "v4" stores ``visual.* / model.* / lm_head``
    (transformers 4.4x), "v5" stores ``model.visual.* / model.language_model.*``. Returns (base, folder).
    """
    folder, base = Path(folder), Path(folder) / "base"
    text = [INSTRUCTION.format(text_prompt=t) + REWARD_SUFFIX for t in corpus] + [
        "You are a helpful assistant."
    ]
    tokenizer = train_qwen2_tokenizer(text)
    tokenizer.chat_template = QWEN2_VL_CHAT_TEMPLATE
    tokenizer.save_pretrained(base)
    Qwen2VLImageProcessorPil(
        min_pixels=image_pixels // 4,
        max_pixels=image_pixels * 4,
        patch_size=14,
        merge_size=2,
        temporal_patch_size=2,
    ).save_pretrained(base)
    special = {
        name: tokenizer.convert_tokens_to_ids(tok)
        for name, tok in (
            ("image_token_id", "<|image_pad|>"),
            ("video_token_id", "<|video_pad|>"),
            ("vision_start_token_id", "<|vision_start|>"),
            ("vision_end_token_id", "<|vision_end|>"),
        )
    }
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer) + 8,
            "hidden_size": hidden,
            "intermediate_size": 2 * hidden,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
            "bos_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "depth": 1,
            "embed_dim": 16,
            "hidden_size": hidden,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        **special,
    )
    config.save_pretrained(base)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = Qwen2VLModel(config)
        backbone.resize_token_embeddings(len(tokenizer) + 1)  # HPSv3 adds <|Reward|>, then resizes
        head = reward_head(hidden)
        lm_head = torch.randn(len(tokenizer) + 1, hidden) * 0.02
    state = {k if naming == "v5" else _old_naming(k): v for k, v in backbone.state_dict().items()}
    if naming == "v5":
        state = {"model." + k: v for k, v in state.items()}
    state |= {f"rm_head.{k}": v for k, v in head.state_dict().items()} | {"lm_head.weight": lm_head}
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "HPSv3.safetensors"))
    return base, folder
