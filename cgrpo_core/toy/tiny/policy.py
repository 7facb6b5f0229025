"""The tiny FLUX/UNO checkpoint: random models of the FLUX.1-dev classes in the FLUX.1-dev folder layout.

:func:`build_tiny_checkpoint` writes ``model_index.json``, ``scheduler/``, ``text_encoder/`` (CLIP),
``text_encoder_2/`` (T5), ``tokenizer/``, ``tokenizer_2/``, ``transformer/`` and ``vae/`` with the real
classes' ``save_pretrained``, so tests and the toy profile go through the very same loader as FLUX.1-dev
(:func:`cgrpo_core.policy.load_policy`). :class:`TinyPolicyConfig` gives the sizes; the toy model zoo
trains the VAE and transformer (:mod:`cgrpo_core.toy.zoo.policy`). Tokenizers are built offline from a
corpus (:mod:`cgrpo_core.toy.tiny.tokenizers`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

from cgrpo_core.data.dreambench import REPO_DATA
from cgrpo_core.toy.tiny.config import TinyPolicyConfig
from cgrpo_core.toy.tiny.tokenizers import train_clip_tokenizer, train_t5_tokenizer

__all__ = ["build_tiny_checkpoint", "default_corpus", "replace_component", "require_component"]

DREAMBENCH_PROMPTS = REPO_DATA / "reference" / "dreambench_singleip.json"


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


def replace_component(model, folder: str | Path) -> Path:
    """``model.save_pretrained`` into ``folder``, replacing what was there only once the save succeeded."""
    folder = Path(folder)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        model.save_pretrained(tmp)
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def require_component(folder: str | Path, component: str) -> Path:
    """``folder``, if it holds ``component/config.json``; else an error saying to build the checkpoint."""
    folder = Path(folder)
    if not (folder / component / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder / component} not found: build the tiny checkpoint first "
            "(cgrpo_core.toy.zoo.policy.base_policy.build_base_checkpoint)"
        )
    return folder
