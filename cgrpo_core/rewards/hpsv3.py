"""HPSv3 (Ma et al. 2025), the paper's prompt-following reward, on transformers' own Qwen2-VL classes.

HPSv3 is Qwen2-VL-7B-Instruct with a special token ``<|Reward|>`` added to the tokenizer (embeddings
resized to it) and an MLP head ``Linear(H, 1024) - ReLU - Dropout - Linear(1024, 16) - ReLU -
Linear(16, 2)`` (fp32) on the last hidden state at that token, giving (mu, sigma); the score is mu
(scale about 4-9 on DreamBench, paper Tables 1-5). The released ``hpsv3`` package pins transformers
4.45 and cannot be installed beside ours, so this module re-implements its inference path from its
public description (MizzenAI/HPSv3: ``inference.py``, ``model/qwen2vl_trainer.py``,
``dataset/data_collator_qwen.py``) and loads the released weights file:

- Input: one user turn of the chat template = the image, then ``INSTRUCTION`` (with the prompt) +
  ``REWARD_SUFFIX``; generation prompt appended; right padding.
- Image: resized (bicubic) so that its pixel count is exactly ``image_pixels`` (HPSv3: min = max =
  256 * 28 * 28 = 448 x 448 for a square) with sides multiple of 28, as qwen-vl-utils' ``smart_resize``.
- Weights: ``HPSv3.safetensors``, the full reward model's state dict. Keys in the 4.4x naming
  (``visual.*``, ``model.*``) or the 5.x naming (``model.visual.*``, ``model.language_model.*``) are both
  read; ``lm_head`` is not needed for a score and is dropped; ``rm_head.*`` fills the head. The
  backbone is built without allocating random weights (accelerate ``init_empty_weights``) and takes
  the file's tensors; the vocabulary size comes from the file.

Differences from the package: the backbone is ``Qwen2VLModel`` (no ``lm_head``: 0.5 G fewer parameters),
the model inputs are assembled by :class:`QwenVLInputs` (``Qwen2VLProcessor`` needs torchvision), and
attention uses SDPA (the package uses flash-attention when installed).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from accelerate import init_empty_weights
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoConfig, AutoTokenizer, Qwen2VLImageProcessorPil, Qwen2VLModel

from cgrpo_core.rewards.base import RewardBatch, batched, checkpoint_dir, checkpoint_file, loading
from cgrpo_core.rewards.config import HPSv3Config, RewardModels
from cgrpo_core.rewards.embeddings import ModelCache, cached
from cgrpo_core.rewards.hpsv3_prompt import INSTRUCTION, REWARD_SUFFIX, REWARD_TOKEN

__all__ = [
    "HPSv3",
    "HPSv3Model",
    "INSTRUCTION",
    "QwenVLInputs",
    "REWARD_SUFFIX",
    "REWARD_TOKEN",
    "load_hpsv3",
    "load_hpsv3_model",
    "reward_head",
    "resize_to_pixels",
]


def reward_head(hidden: int, outputs: int = 2) -> torch.nn.Sequential:
    """HPSv3's "ranknet" head (indices 0-5 match the released ``rm_head.*`` keys); outputs (mu, sigma)."""
    return torch.nn.Sequential(
        torch.nn.Linear(hidden, 1024),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.05),
        torch.nn.Linear(1024, 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, outputs),
    )


def resize_to_pixels(image: Image.Image, pixels: int, factor: int = 28) -> Image.Image:
    """Bicubic resize to about ``pixels`` pixels, sides multiple of ``factor`` (qwen-vl-utils smart_resize
    with min_pixels = max_pixels = ``pixels``)."""
    w, h = image.size
    if max(w, h) / min(w, h) > 200:
        raise ValueError(f"aspect ratio of a {w}x{h} image is above 200; HPSv3 cannot score it")
    h_bar, w_bar = max(factor, round(h / factor) * factor), max(factor, round(w / factor) * factor)
    if h_bar * w_bar > pixels:
        beta = math.sqrt(h * w / pixels)
        h_bar, w_bar = math.floor(h / beta / factor) * factor, math.floor(w / beta / factor) * factor
    elif h_bar * w_bar < pixels:
        beta = math.sqrt(pixels / (h * w))
        h_bar, w_bar = math.ceil(h * beta / factor) * factor, math.ceil(w * beta / factor) * factor
    return image.resize((w_bar, h_bar), Image.Resampling.BICUBIC)


class HPSv3Model(torch.nn.Module):
    """Qwen2-VL backbone + reward head read at the <|Reward|> token: inputs -> (mu, sigma) [B, 2]."""

    def __init__(self, backbone: Qwen2VLModel, head: torch.nn.Sequential, reward_token_id: int):
        super().__init__()
        self.backbone, self.head, self.reward_token_id = backbone, head, reward_token_id

    def forward(self, input_ids: torch.Tensor, **inputs) -> torch.Tensor:
        hidden = self.backbone(input_ids=input_ids, **inputs).last_hidden_state  # (B, L, H)
        at = input_ids == self.reward_token_id  # (B, L)
        if not bool((at.sum(1) == 1).all()):
            raise ValueError(
                f"every sequence needs exactly one {REWARD_TOKEN} token, found {at.sum(1).tolist()}"
            )
        return self.head(hidden[at].float())  # (B, 2)


def _split_state(state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """(backbone keys in Qwen2VLModel naming, head keys) from either released naming; lm_head dropped."""
    backbone, head = {}, {}
    for key, value in state.items():
        if key.startswith("rm_head."):
            head[key.removeprefix("rm_head.")] = value
        elif key.startswith(("model.visual.", "model.language_model.")):
            backbone[key.removeprefix("model.")] = value
        elif key.startswith("visual."):
            backbone[key] = value
        elif key.startswith("model."):
            backbone["language_model." + key.removeprefix("model.")] = value
        elif not key.startswith("lm_head."):
            raise ValueError(f"unexpected key {key!r} in the HPSv3 weights file")
    return backbone, head


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("model", state)


class QwenVLInputs:
    """Qwen2-VL model inputs from chat texts and images, as ``Qwen2VLProcessor`` builds them.

    Each ``<|image_pad|>`` of the rendered chat is expanded to the image's merged-patch count
    (grid T*H*W / merge_size^2), texts are tokenised with right padding, and ``mm_token_type_ids`` marks
    image tokens with 1 (the processor class itself cannot be built without torchvision: its video
    processor needs it).
    """

    def __init__(
        self, tokenizer, image_processor: Qwen2VLImageProcessorPil, image_token: str = "<|image_pad|>"
    ):
        self.tokenizer, self.image_processor, self.image_token = tokenizer, image_processor, image_token
        self.image_token_id = tokenizer.convert_tokens_to_ids(image_token)

    def chat(self, messages: list[dict]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def __call__(self, texts: list[str], images: list[Image.Image]) -> dict[str, torch.Tensor]:
        vision = self.image_processor(images=images, return_tensors="pt")
        merge = self.image_processor.merge_size**2
        expanded = []
        for text, grid in zip(texts, vision["image_grid_thw"], strict=True):
            if text.count(self.image_token) != 1:
                raise ValueError(
                    f"each HPSv3 text holds one image placeholder, found {text.count(self.image_token)}"
                )
            expanded.append(text.replace(self.image_token, self.image_token * int(grid.prod() // merge)))
        tokens = self.tokenizer(expanded, padding=True, return_tensors="pt")
        mm_types = (tokens["input_ids"] == self.image_token_id).long()  # (B, L): 1 at image tokens
        return {**tokens, **vision, "mm_token_type_ids": mm_types}


def _processor(base: str, model_id: str) -> QwenVLInputs:
    tokenizer = loading(
        "HPSv3 tokenizer", model_id, lambda: AutoTokenizer.from_pretrained(base, padding_side="right")
    )
    image_processor = loading(
        "HPSv3 image processor", model_id, lambda: Qwen2VLImageProcessorPil.from_pretrained(base)
    )
    if tokenizer.chat_template is None:
        raise ValueError(f"{base} has no chat template; the Qwen2-VL-Instruct tokenizer files are incomplete")
    tokenizer.add_special_tokens({"additional_special_tokens": [REWARD_TOKEN]})
    return QwenVLInputs(tokenizer, image_processor)


def load_hpsv3_model(cfg: HPSv3Config, device: str = "cpu") -> tuple[HPSv3Model, QwenVLInputs]:
    """(HPSv3 model in eval mode, its processor) from the base-model folder and the released weights."""
    base = checkpoint_dir("HPSv3 base model", cfg.base_id, cfg.base_dir)
    weights = checkpoint_file(
        "HPSv3 weights", cfg.checkpoint_dir, cfg.checkpoint_file, repo=cfg.checkpoint_id
    )
    processor = _processor(base, cfg.base_id)
    config = loading("HPSv3 base config", cfg.base_id, lambda: AutoConfig.from_pretrained(base))
    backbone_state, head_state = _split_state(_read_state(weights))
    vocab = backbone_state["language_model.embed_tokens.weight"].shape[0]
    reward_id = processor.tokenizer.convert_tokens_to_ids(REWARD_TOKEN)
    if not reward_id < vocab:
        raise ValueError(
            f"{weights} has {vocab} token embeddings but {REWARD_TOKEN} is token {reward_id}: "
            f"the base tokenizer in {base} does not match the HPSv3 weights"
        )
    config.text_config.vocab_size = vocab
    dtype = getattr(torch, cfg.dtype)
    with init_empty_weights(include_buffers=False):
        backbone = Qwen2VLModel(config)
    backbone.load_state_dict(backbone_state, strict=True, assign=True)
    head = reward_head(config.text_config.hidden_size, outputs=head_state["5.weight"].shape[0])
    head.load_state_dict(head_state)
    model = HPSv3Model(backbone.to(device, dtype), head.to(device, torch.float32), reward_id)
    return model.eval(), processor


class HPSv3:
    """HPSv3 score (mu) per (image, prompt) [N]."""

    name = "hpsv3"
    needs = frozenset({"prompts"})

    def __init__(self, model: HPSv3Model, processor: QwenVLInputs, cfg: HPSv3Config, device: str):
        self.model, self.processor, self.cfg, self.device = model, processor, cfg, device
        image_processor = processor.image_processor
        self.factor = image_processor.patch_size * image_processor.merge_size

    def inputs(self, pairs: list[tuple[Image.Image, str]]) -> dict[str, torch.Tensor]:
        """Processor outputs for (image, prompt) pairs: HPSv3's message, image resized to ``image_pixels``."""
        images = [resize_to_pixels(image, self.cfg.image_pixels, self.factor) for image, _ in pairs]
        messages = [
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "image"},
                        {"type": "text", "text": INSTRUCTION.format(text_prompt=p) + REWARD_SUFFIX},
                    ],
                }
            ]
            for _, p in pairs
        ]
        return self.processor([self.processor.chat(m) for m in messages], images)

    def __call__(self, batch: RewardBatch) -> torch.Tensor:
        """mu [N] (float32)."""
        batch.require(self.name, self.needs)

        def run(pairs):
            dtype = next(self.model.backbone.parameters()).dtype
            inputs = {k: v.to(self.device) for k, v in self.inputs(pairs).items()}
            inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
            return self.model(**inputs)[:, 0]

        return batched(run, list(zip(batch.images, batch.prompts, strict=True)), self.cfg.batch_size, "hpsv3")


def load_hpsv3(models: RewardModels, device: str = "cpu", cache: ModelCache | None = None) -> HPSv3:
    """The ``hpsv3`` reward (``models.hpsv3``), loaded once per cache."""
    cfg = models.hpsv3
    model, processor = cached(cache, ("hpsv3", cfg, device), lambda: load_hpsv3_model(cfg, device))
    return HPSv3(model, processor, cfg, device)
