"""Load the policy from a folder laid out like the FLUX.1-dev hub repo, or build a tiny one in that layout.

One loader serves both profiles. :func:`load_policy` reads ``model_index.json``, ``scheduler/``,
``text_encoder/`` (CLIP), ``text_encoder_2/`` (T5), ``tokenizer/``, ``tokenizer_2/``, ``transformer/``
(FluxTransformer2DModel) and ``vae/`` (AutoencoderKL) with the real classes' ``from_pretrained``, fuses
UNO's LoRA into the transformer (the released trainer starts from FLUX merged with UNO), freezes it and
adds the trainable LoRA. :func:`build_tiny_checkpoint` writes the same folders with tiny random models of
the same classes (``save_pretrained``), so tests and the toy profile go through the very same loader.

A missing or incomplete folder is a :class:`MissingModelError` naming each missing file, the command
that downloads it and where to put it. The scheduler config is loaded and checked but not used to
step: sampling uses :mod:`cgrpo_core.flow_matching` with the sampler's constant shift (released code:
shift 3), not FLUX's resolution-dependent shift.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    T5Config,
    T5EncoderModel,
    T5TokenizerFast,
)

from cgrpo_core.policy.config import PolicyConfig, TinyPolicyConfig
from cgrpo_core.policy.lora import add_lora, fuse_uno_lora, lora_parameters, read_uno_lora
from cgrpo_core.text_tokenizers import train_clip_tokenizer, train_t5_tokenizer

__all__ = [
    "MissingModelError",
    "Policy",
    "build_tiny_checkpoint",
    "check_model_folder",
    "default_corpus",
    "load_policy",
]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
REPO_ROOT = Path(__file__).resolve().parents[2]
DREAMBENCH_PROMPTS = REPO_ROOT / "data" / "reference" / "dreambench_singleip.json"
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
        "the toy profile build a tiny one with cgrpo_core.policy.build_tiny_checkpoint(folder)."
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


# ---------------------------------------------------------------------------------------------------
# The tiny checkpoint


def default_corpus(extra: Iterable[str] = ()) -> list[str]:
    """DreamBench prompts (data/reference/dreambench_singleip.json) plus ``extra`` captions, de-duplicated."""
    prompts = [item["prompt"] for item in json.loads(DREAMBENCH_PROMPTS.read_text())]
    return list(dict.fromkeys([*prompts, *extra]))


def _tiny_components(tiny: TinyPolicyConfig, corpus: list[str]) -> dict[str, object]:
    """Random tiny models of the FLUX.1-dev classes (sizes from ``tiny``), plus tokenizers and scheduler."""
    tokenizer = train_clip_tokenizer(corpus, tiny.clip_vocab_size, model_max_length=tiny.clip_max_length)
    tokenizer_2 = train_t5_tokenizer(corpus, tiny.t5_vocab_size, model_max_length=tiny.t5_max_length)
    clip = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=tiny.clip_hidden_size,
        intermediate_size=4 * tiny.clip_hidden_size,
        projection_dim=tiny.clip_hidden_size,
        num_hidden_layers=tiny.clip_layers,
        num_attention_heads=tiny.clip_heads,
        max_position_embeddings=tiny.clip_max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    t5 = T5Config(
        vocab_size=len(tokenizer_2),
        d_model=tiny.t5_d_model,
        d_kv=tiny.t5_d_model // tiny.t5_heads,
        d_ff=2 * tiny.t5_d_model,
        num_layers=tiny.t5_layers,
        num_heads=tiny.t5_heads,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    levels = len(tiny.vae_block_out_channels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(tiny.seed)
        components = {
            "text_encoder": CLIPTextModel(clip),
            "text_encoder_2": T5EncoderModel(t5),
            "vae": AutoencoderKL(
                down_block_types=("DownEncoderBlock2D",) * levels,
                up_block_types=("UpDecoderBlock2D",) * levels,
                block_out_channels=tiny.vae_block_out_channels,
                layers_per_block=tiny.vae_layers_per_block,
                latent_channels=tiny.latent_channels,
                norm_num_groups=tiny.vae_norm_num_groups,
                scaling_factor=0.3611,
                shift_factor=0.1159,
                use_quant_conv=False,
                use_post_quant_conv=False,
            ),
            "transformer": FluxTransformer2DModel(
                in_channels=4 * tiny.latent_channels,
                num_layers=tiny.num_layers,
                num_single_layers=tiny.num_single_layers,
                attention_head_dim=tiny.attention_head_dim,
                num_attention_heads=tiny.num_attention_heads,
                joint_attention_dim=tiny.t5_d_model,
                pooled_projection_dim=tiny.clip_hidden_size,
                guidance_embeds=True,
                axes_dims_rope=tiny.axes_dims_rope,
            ),
        }
    # FLUX.1-dev's scheduler config (its dynamic shift is recorded, not used: see module docstring).
    components["scheduler"] = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
    components["tokenizer"], components["tokenizer_2"] = tokenizer, tokenizer_2
    return components


def _model_index(components: dict[str, object]) -> dict:
    """model_index.json as in the FLUX.1-dev repo: component -> [library, class]."""
    import diffusers

    libraries = {
        "text_encoder": "transformers",
        "text_encoder_2": "transformers",
        "tokenizer": "transformers",
        "tokenizer_2": "transformers",
    }
    classes = {"tokenizer_2": "T5TokenizerFast"}  # transformers 5 aliases it to T5Tokenizer
    index: dict = {"_class_name": "FluxPipeline", "_diffusers_version": diffusers.__version__}
    for name, obj in sorted(components.items()):
        index[name] = [libraries.get(name, "diffusers"), classes.get(name, type(obj).__name__)]
    return index


def build_tiny_checkpoint(
    folder: str | Path, tiny: TinyPolicyConfig | None = None, corpus: Iterable[str] | None = None
) -> Path:
    """Write a tiny random FLUX/UNO checkpoint in the FLUX.1-dev layout to ``folder`` (atomically).

    Args:
        folder: destination; must not exist yet or be empty (the folder appears complete or not at all).
        tiny: sizes (default :class:`TinyPolicyConfig`).
        corpus: text the tokenizers are built from (default: the DreamBench prompts); pass the toy captions.

    Returns:
        ``folder``, loadable by :func:`load_policy` with ``PolicyConfig(model_folder=folder, uno_lora=None)``.
    """
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise FileExistsError(
            f"{folder} exists and is not empty; build_tiny_checkpoint writes a new folder (remove it first)"
        )
    corpus = default_corpus() if corpus is None else list(corpus)
    if not corpus:
        raise ValueError("corpus is empty: the tokenizers need some text (e.g. default_corpus(captions))")
    components = _tiny_components(tiny or TinyPolicyConfig(), corpus)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name, obj in components.items():
            obj.save_pretrained(tmp / name)
        (tmp / "model_index.json").write_text(json.dumps(_model_index(components), indent=2) + "\n")
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
