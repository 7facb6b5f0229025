"""LoRA on the FLUX transformer: inject (peft), save/load (diffusers format), and UNO's LoRA conversion.

The trained adapter is a peft LoRA named "default" on the modules of ``PolicyConfig.lora_targets``:

- ``attention``: in every double block the image and text q/k/v and output projections (``attn.to_q``,
  ``to_k``, ``to_v``, ``to_out.0``, ``add_q_proj``, ``add_k_proj``, ``add_v_proj``, ``to_add_out``); in every
  single block q/k/v and ``proj_out``. These are exactly the layers UNO's LoRA processors adapt
  (``qkv_lora1/2``, ``proj_lora1/2`` in double blocks, ``qkv_lora``, ``proj_lora`` in single blocks; the
  single block's ``proj_out`` maps the attention and MLP outputs together, as BFL's ``linear2``).
- ``mlp``: the feed-forward layers (``ff``, ``ff_context`` in double blocks, ``proj_mlp`` in single blocks).

Trainable weights are float32 master weights whatever the base's dtype (the released config: bf16 base,
fp32 LoRA under autocast): peft creates a LoRA in the base layer's dtype, and in bf16 an AdamW update of
lr 1e-5 is below half a unit in the last place of most weights, so most of them never move and weight decay
is always lost. :func:`add_lora` and :func:`load_lora` keep the base in its dtype and cast the LoRA up; peft
casts a layer's input to the LoRA's dtype and the sum back to the base's.

Deviation from the released code: UNO's fused ``qkv`` LoRA shares one down-projection between q, k and v;
peft gives each its own (a superset: a shared one is representable, see :func:`convert_uno_lora`). A is
initialised N(0, 1/rank) and B = 0 as UNO's ``LoRALinearLayer`` (peft ``init_lora_weights="gaussian"``).

Files: :func:`save_lora` writes ``pytorch_lora_weights.safetensors`` with ``transformer.``-prefixed peft
keys and the LoraConfig in the safetensors metadata, the format of diffusers' ``save_lora_weights``: a
diffusers user loads it with ``FluxPipeline.load_lora_weights(folder)``.

UNO's released ``dit_lora.safetensors`` uses UNO/x-flux key names (``double_blocks.{i}.processor.
qkv_lora1.down.weight``); :func:`convert_uno_lora` maps them to peft keys and :func:`fuse_uno_lora`
adds ``up @ down`` to the base weights (UNO's layers have no network_alpha: scale 1).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from diffusers import FluxTransformer2DModel
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file
from torch import Tensor

__all__ = [
    "ADAPTER",
    "LORA_FILE",
    "TARGET_GROUPS",
    "add_lora",
    "convert_uno_lora",
    "fuse_lora",
    "fuse_uno_lora",
    "load_lora",
    "lora_disabled",
    "lora_parameters",
    "lora_target_modules",
    "read_uno_lora",
    "save_lora",
]

ADAPTER = "default"
LORA_FILE = "pytorch_lora_weights.safetensors"  # diffusers' LORA_WEIGHT_NAME_SAFE


def _attention_modules(transformer: FluxTransformer2DModel) -> list[str]:
    double = [
        "attn.to_q",
        "attn.to_k",
        "attn.to_v",
        "attn.to_out.0",
        "attn.add_q_proj",
        "attn.add_k_proj",
        "attn.add_v_proj",
        "attn.to_add_out",
    ]
    single = ["attn.to_q", "attn.to_k", "attn.to_v", "proj_out"]
    return [
        f"transformer_blocks.{i}.{m}" for i in range(len(transformer.transformer_blocks)) for m in double
    ] + [
        f"single_transformer_blocks.{i}.{m}"
        for i in range(len(transformer.single_transformer_blocks))
        for m in single
    ]


def _mlp_modules(transformer: FluxTransformer2DModel) -> list[str]:
    double = ["ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2"]
    return [
        f"transformer_blocks.{i}.{m}" for i in range(len(transformer.transformer_blocks)) for m in double
    ] + [f"single_transformer_blocks.{i}.proj_mlp" for i in range(len(transformer.single_transformer_blocks))]


TARGET_GROUPS: dict[str, Callable[[FluxTransformer2DModel], list[str]]] = {
    "attention": _attention_modules,
    "mlp": _mlp_modules,
}


def lora_target_modules(transformer: FluxTransformer2DModel, groups: Iterable[str]) -> list[str]:
    """Full module names of the LoRA targets in ``groups`` (keys of :data:`TARGET_GROUPS`)."""
    names: list[str] = []
    for group in groups:
        if group not in TARGET_GROUPS:
            raise ValueError(f"unknown LoRA target group {group!r}; choose from {sorted(TARGET_GROUPS)}")
        names += TARGET_GROUPS[group](transformer)
    return names


def add_lora(
    transformer: FluxTransformer2DModel, rank: int, alpha: float, groups: Iterable[str], seed: int = 0
) -> None:
    """Inject a trainable LoRA (adapter "default") into ``groups``; every other parameter is frozen.

    The init draws from a private RNG seeded with ``seed``: the same config gives the same LoRA.
    """
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        target_modules=lora_target_modules(transformer, groups),
        init_lora_weights="gaussian",  # A ~ N(0, 1/r), B = 0: as UNO's LoRALinearLayer
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer.add_adapter(config, adapter_name=ADAPTER)
    _set_trainable(transformer, trainable=True)


def _set_trainable(transformer: FluxTransformer2DModel, trainable: bool) -> None:
    """Only the LoRA may train; its weights become float32 master weights (module docstring)."""
    for name, param in transformer.named_parameters():
        is_lora = ".lora_" in name
        if is_lora and param.dtype != torch.float32:
            param.data = param.data.to(torch.float32)
        param.requires_grad_(trainable and is_lora)


@contextmanager
def lora_disabled(transformer: FluxTransformer2DModel) -> Iterator[None]:
    """The base transformer: the trained LoRA switched off inside the block (peft ``disable_adapters``),
    back on after it, with every parameter's ``requires_grad`` as it was. The frozen reference of RPO and
    of GRPO's KL term, with no second copy of the transformer. Without a LoRA: nothing to do."""
    if not getattr(transformer, "_hf_peft_config_loaded", False):
        yield
        return
    flags = [(p, p.requires_grad) for p in transformer.parameters()]
    transformer.disable_adapters()
    try:
        yield
    finally:
        transformer.enable_adapters()  # peft also sets requires_grad: restore the flags as they were
        for p, flag in flags:
            p.requires_grad_(flag)


def lora_parameters(transformer: FluxTransformer2DModel) -> list[torch.nn.Parameter]:
    """The LoRA parameters of the transformer (empty without an adapter)."""
    return [p for name, p in transformer.named_parameters() if ".lora_" in name]


def save_lora(transformer: FluxTransformer2DModel, folder: str | Path) -> Path:
    """Write the adapter to ``folder/pytorch_lora_weights.safetensors`` (diffusers format, atomic)."""
    from diffusers.loaders.lora_pipeline import FluxLoraLoaderMixin

    if ADAPTER not in getattr(transformer, "peft_config", {}):
        raise ValueError("the transformer has no LoRA adapter to save (policy.lora_rank = 0?)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    metadata = transformer.peft_config[ADAPTER].to_dict()
    metadata = {k: sorted(v) if isinstance(v, set) else v for k, v in metadata.items()}
    state = {
        k: v.detach().contiguous()
        for k, v in get_peft_model_state_dict(transformer, adapter_name=ADAPTER).items()
    }
    tmp = Path(tempfile.mkdtemp(prefix=".lora.", dir=folder))
    try:
        FluxLoraLoaderMixin.save_lora_weights(
            tmp, transformer_lora_layers=state, transformer_lora_adapter_metadata=metadata
        )
        os.replace(tmp / LORA_FILE, folder / LORA_FILE)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder / LORA_FILE


def load_lora(
    transformer: FluxTransformer2DModel,
    path: str | Path | dict[str, Tensor],
    trainable: bool = True,
    metadata: dict | None = None,
) -> None:
    """Replace the adapter by the LoRA in ``path`` (a folder, a .safetensors file, or a state dict).

    Accepts what :func:`save_lora` writes (and any diffusers Flux LoRA with ``transformer.`` keys). The
    adapter's config (rank, alpha, targets) comes from the file's metadata, as diffusers'
    ``load_lora_weights`` reads it; for a state dict pass it as ``metadata`` (else alpha = rank).
    """
    from diffusers.loaders.lora_pipeline import FluxLoraLoaderMixin

    if isinstance(path, dict):
        state = path
    else:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"LoRA {path} does not exist (expected a folder with {LORA_FILE} or that file)"
            )
        file = path / LORA_FILE if path.is_dir() else path
        # diffusers applies the stored alpha only when given the state dict with its metadata, not the path
        state, metadata = FluxLoraLoaderMixin.lora_state_dict(
            str(file.parent), weight_name=file.name, return_lora_metadata=True
        )
    if ADAPTER in getattr(transformer, "peft_config", {}):
        transformer.delete_adapters(ADAPTER)
    transformer.load_lora_adapter(state, prefix="transformer", adapter_name=ADAPTER, metadata=metadata)
    _set_trainable(transformer, trainable)
    _copy_full_precision(transformer, state)


@torch.no_grad()
def _copy_full_precision(transformer: FluxTransformer2DModel, state: dict[str, Tensor]) -> None:
    """Copy the file's values into the float32 LoRA again: diffusers loads them into a LoRA of the base's
    dtype first, which rounds an fp32 file to bf16 under a bf16 base."""
    params = dict(transformer.named_parameters())
    for key, value in state.items():
        name = key.removeprefix("transformer.")
        name = name.replace(".lora_A.", f".lora_A.{ADAPTER}.").replace(".lora_B.", f".lora_B.{ADAPTER}.")
        if name in params and params[name].shape == value.shape:
            params[name].copy_(value.to(device=params[name].device, dtype=params[name].dtype))


# ---------------------------------------------------------------------------------------------------
# UNO's LoRA

# UNO processor LoRA -> diffusers modules; a fused qkv LoRA feeds three modules (its `up` split in three).
_UNO_DOUBLE = {
    "qkv_lora1": ("attn.to_q", "attn.to_k", "attn.to_v"),  # image stream
    "proj_lora1": ("attn.to_out.0",),
    "qkv_lora2": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),  # text stream
    "proj_lora2": ("attn.to_add_out",),
}
_UNO_SINGLE = {"qkv_lora": ("attn.to_q", "attn.to_k", "attn.to_v"), "proj_lora": ("proj_out",)}
_UNO_KEY = re.compile(
    r"^(?:module\.|diffusion_model\.)?(double|single)_blocks\.(\d+)\.processor\.(\w+)\.(down|up)\.weight$"
)


def read_uno_lora(path: str | Path) -> dict[str, Tensor]:
    """UNO's ``dit_lora.safetensors`` as a state dict (its own key names)."""
    return load_file(str(path))


def convert_uno_lora(uno_state: dict[str, Tensor]) -> dict[str, Tensor]:
    """UNO/x-flux LoRA keys -> peft keys of diffusers' transformer (``transformer.<module>.lora_A.weight``).

    ``down`` [r, in] becomes ``lora_A`` of every module it feeds; ``up`` [k * out, r] is split into k
    ``lora_B`` [out, r]. Keys that are not UNO LoRA keys are an error (nothing is dropped silently).
    """
    pairs: dict[tuple[str, str, str], dict[str, Tensor]] = {}
    for key, value in uno_state.items():
        match = _UNO_KEY.match(key)
        table = _UNO_DOUBLE if match and match.group(1) == "double" else _UNO_SINGLE
        if match is None or match.group(3) not in table:
            raise ValueError(
                f"not a UNO LoRA key: {key!r} (expected e.g. "
                "'double_blocks.0.processor.qkv_lora1.down.weight' "
                f"with one of {sorted(_UNO_DOUBLE)} or single_blocks with one of {sorted(_UNO_SINGLE)})"
            )
        kind, block, layer, part = match.groups()
        pairs.setdefault((kind, block, layer), {})[part] = value
    out: dict[str, Tensor] = {}
    for (kind, block, layer), parts in sorted(pairs.items()):
        if set(parts) != {"down", "up"}:
            raise ValueError(
                f"UNO LoRA {kind}_blocks.{block}.{layer} lacks its {({'down', 'up'} - set(parts)).pop()}"
            )
        prefix = (
            f"transformer.{'transformer_blocks' if kind == 'double' else 'single_transformer_blocks'}.{block}"
        )
        modules = (_UNO_DOUBLE if kind == "double" else _UNO_SINGLE)[layer]
        ups = torch.chunk(parts["up"], len(modules), dim=0)
        for module, up in zip(modules, ups, strict=True):
            out[f"{prefix}.{module}.lora_A.weight"] = parts["down"].clone()
            out[f"{prefix}.{module}.lora_B.weight"] = up.clone()
    return out


@torch.no_grad()
def fuse_lora(transformer: FluxTransformer2DModel, peft_state: dict[str, Tensor], scale: float = 1.0) -> None:
    """Add ``scale * B @ A`` of each LoRA in ``peft_state`` (``transformer.``-prefixed keys) to its base."""
    modules = dict(transformer.named_modules())
    for key, lora_a in peft_state.items():
        if not key.endswith(".lora_A.weight"):
            continue
        name = key.removeprefix("transformer.").removesuffix(".lora_A.weight")
        layer = modules.get(name)
        layer = getattr(layer, "base_layer", layer)  # the frozen Linear inside a peft LoRA layer
        if not isinstance(layer, torch.nn.Linear):
            raise ValueError(f"LoRA key {key!r} names no Linear layer of this transformer")
        weight = layer.weight
        lora_b = peft_state[key.replace(".lora_A.", ".lora_B.")]
        delta = lora_b.to(weight.device, torch.float32) @ lora_a.to(weight.device, torch.float32)  # (out, in)
        if delta.shape != weight.shape:
            raise ValueError(
                f"LoRA {name}: B @ A has shape {tuple(delta.shape)}, layer weight {tuple(weight.shape)}"
            )
        weight.add_((scale * delta).to(weight.dtype))


def fuse_uno_lora(transformer: FluxTransformer2DModel, uno_state: dict[str, Tensor]) -> None:
    """Merge UNO's released LoRA (its own key names) into the base weights, scale 1 (no network_alpha)."""
    fuse_lora(transformer, convert_uno_lora(uno_state), scale=1.0)
