"""Load the policy from a folder laid out like the FLUX.1-dev hub repo (both profiles, one loader).

:func:`load_policy` reads ``model_index.json``, ``scheduler/``, ``text_encoder/`` (CLIP), ``text_encoder_2/``
(T5), ``tokenizer/``, ``tokenizer_2/``, ``transformer/`` (FluxTransformer2DModel) and ``vae/`` (AutoencoderKL)
with the real classes' ``from_pretrained``, fuses UNO's LoRA into the transformer (the released trainer
starts from FLUX merged with UNO), freezes it and adds the trainable LoRA. The toy profile's tiny
checkpoints (:mod:`cgrpo_core.toy.tiny.policy`) are written in the same layout and read by the same loader.

A missing or incomplete folder is a :class:`MissingModelError` naming each missing file, the command
that downloads it and where to put it. The scheduler config is loaded and checked but not used to
step: sampling uses :mod:`cgrpo_core.flow_matching` with the sampler's constant shift (released code:
shift 3), not FLUX's resolution-dependent shift.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
from transformers import CLIPTextModel, CLIPTokenizer, T5EncoderModel, T5TokenizerFast

from cgrpo_core.policy.config import PolicyConfig
from cgrpo_core.policy.lora import add_lora, fuse_uno_lora, lora_parameters, read_uno_lora

__all__ = [
    "MissingModelError",
    "Policy",
    "check_model_folder",
    "load_policy",
]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
UNO_LORA_FILE = "dit_lora.safetensors"

# Files every component needs; a tuple is "one of these" (a single file or a sharded index), and an
# alternative that is itself a tuple needs all its files (a slow CLIP tokenizer: vocab.json + merges.txt).
_WEIGHTS = {
    "diffusers": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json"),
    "transformers": ("model.safetensors", "model.safetensors.index.json"),
}
REQUIRED_FILES: dict[str, list[str | tuple[str, ...]]] = {
    "": ["model_index.json"],
    "scheduler": ["scheduler_config.json"],
    "text_encoder": ["config.json", _WEIGHTS["transformers"]],
    "text_encoder_2": ["config.json", _WEIGHTS["transformers"]],
    "tokenizer": ["tokenizer_config.json", ("tokenizer.json", ("vocab.json", "merges.txt"))],
    "tokenizer_2": ["tokenizer_config.json", ("tokenizer.json", "spiece.model")],
    "transformer": ["config.json", _WEIGHTS["diffusers"]],
    "vae": ["config.json", _WEIGHTS["diffusers"]],
}
_HUB_PATTERNS = ["model_index.json", *(f"{sub}/*" for sub in REQUIRED_FILES if sub)]


class MissingModelError(FileNotFoundError):
    """Weights are missing: the message names the files, where to download them and where to put them."""


@dataclass
class Policy:
    """The loaded UNO/FLUX components; the transformer carries the trainable LoRA (adapter "default")."""

    config: PolicyConfig
    folder: Path
    transformer: FluxTransformer2DModel
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    text_encoder_2: T5EncoderModel
    tokenizer: CLIPTokenizer
    tokenizer_2: T5TokenizerFast
    scheduler_config: dict

    @property
    def device(self) -> torch.device:
        return self.transformer.device

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.config.dtype]

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent cell: 2 ** (VAE levels - 1) (FLUX.1-dev: 8)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def pixel_multiple(self) -> int:
        """Image sides must be multiples of this: one 2x2-packed latent token (FLUX.1-dev: 16 px)."""
        return 2 * self.vae_scale_factor

    @property
    def latent_channels(self) -> int:
        return self.vae.config.latent_channels

    @property
    def clip_max_length(self) -> int:
        return self.config.clip_max_length or self.tokenizer.model_max_length

    @property
    def t5_max_length(self) -> int:
        return self.config.t5_max_length or self.tokenizer_2.model_max_length

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """The LoRA parameters (the only ones that require grad)."""
        return lora_parameters(self.transformer)


# ---------------------------------------------------------------------------------------------------
# Finding and checking the weights


def _download_hint(repo_id: str, folder: Path | str) -> str:
    return (
        f"Download it with `hf download {repo_id} --local-dir {folder}` (accept the licence on "
        f"https://huggingface.co/{repo_id} first) and set policy.model_folder to that folder; for tests and "
        "the toy profile build a tiny one with cgrpo_core.toy.tiny.policy.build_tiny_checkpoint(folder)."
    )


def _missing_in(folder: Path) -> list[str]:
    """Relative paths of required files absent from ``folder`` (shards listed by an index included)."""
    missing: list[str] = []
    for sub, needs in REQUIRED_FILES.items():
        for need in needs:
            options = [
                o if isinstance(o, tuple) else (o,) for o in (need if isinstance(need, tuple) else (need,))
            ]
            present = [o for o in options if all((folder / sub / name).is_file() for name in o)]
            if not present:
                missing.append(" or ".join(" + ".join(str(Path(sub) / name) for name in o) for o in options))
            elif present[0][0].endswith(".index.json"):
                index = folder / sub / present[0][0]
                shards = set(json.loads(index.read_text())["weight_map"].values())
                missing += [str(Path(sub) / s) for s in sorted(shards) if not (folder / sub / s).is_file()]
    return missing


def check_model_folder(folder: str | Path, repo_id: str = "black-forest-labs/FLUX.1-dev") -> Path:
    """``folder`` if it holds every file of the FLUX.1-dev layout, else a :class:`MissingModelError`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingModelError(f"model folder {folder} does not exist. {_download_hint(repo_id, folder)}")
    missing = _missing_in(folder)
    if missing:
        raise MissingModelError(
            f"model folder {folder} is incomplete; missing: {', '.join(missing)}. "
            f"{_download_hint(repo_id, folder)}"
        )
    return folder


def _resolve_folder(cfg: PolicyConfig) -> Path:
    if cfg.model_folder is not None:
        return check_model_folder(cfg.model_folder, cfg.base_model)
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(cfg.base_model, allow_patterns=_HUB_PATTERNS))
    except Exception as err:  # offline, gated, not found: all mean "get the files yourself"
        raise MissingModelError(
            f"could not get {cfg.base_model} from the Hugging Face hub or its cache ({type(err).__name__}: "
            f"{err}). {_download_hint(cfg.base_model, '<folder>')}"
        ) from err
    return check_model_folder(folder, cfg.base_model)


def _resolve_uno_lora(cfg: PolicyConfig) -> Path:
    hint = (
        f"Download it with `hf download {cfg.uno_lora} {UNO_LORA_FILE} --local-dir <dir>` and "
        "set policy.uno_lora_file to <dir>/dit_lora.safetensors, or set policy.uno_lora to None."
    )
    if cfg.uno_lora_file is not None:
        path = Path(cfg.uno_lora_file)
        if not path.is_file():
            raise MissingModelError(f"UNO LoRA file {path} does not exist. {hint}")
        return path
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(cfg.uno_lora, UNO_LORA_FILE))
    except Exception as err:
        raise MissingModelError(
            f"could not get {cfg.uno_lora}/{UNO_LORA_FILE} ({type(err).__name__}). {hint}"
        ) from err


# ---------------------------------------------------------------------------------------------------
# Loading


def load_policy(cfg: PolicyConfig, device: str | torch.device = "cpu") -> Policy:
    """Load every component from ``cfg``'s folder (or hub cache), fuse UNO's LoRA, add the trainable LoRA.

    All base weights are frozen (``requires_grad=False``); only the LoRA of ``cfg.lora_targets`` trains.
    Raises :class:`MissingModelError` when a weight file is missing.
    """
    folder = _resolve_folder(cfg)
    dtype = DTYPES[cfg.dtype]
    transformer = FluxTransformer2DModel.from_pretrained(folder, subfolder="transformer", torch_dtype=dtype)
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=DTYPES[cfg.vae_dtype])
    text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder", dtype=dtype)
    text_encoder_2 = T5EncoderModel.from_pretrained(folder / "text_encoder_2", dtype=dtype)
    scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(folder, subfolder="scheduler")
    policy = Policy(
        config=cfg,
        folder=folder,
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer"),
        tokenizer_2=T5TokenizerFast.from_pretrained(folder / "tokenizer_2"),
        scheduler_config=dict(scheduler.config),
    )
    for module in (transformer, vae, text_encoder, text_encoder_2):
        module.requires_grad_(False)
        module.eval()
    if cfg.lora_rank > 0:  # initialised on the CPU, so a seed gives the same LoRA on every device
        add_lora(transformer, cfg.lora_rank, cfg.effective_lora_alpha, cfg.lora_targets, cfg.lora_seed)
    for module in (transformer, vae, text_encoder, text_encoder_2):
        module.to(device)
    if cfg.uno_lora is not None:  # into the frozen base weights, on the device (fast on a GPU)
        fuse_uno_lora(transformer, read_uno_lora(_resolve_uno_lora(cfg)))
    if cfg.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    return policy
