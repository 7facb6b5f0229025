"""Build the toy zoo's generator side in one call: the tiny checkpoint, its VAE, then its base policy.

    curves = train_policy_zoo(world_dir, out_dir, cfg.toy.zoo.policy)   # VAE, then base policy; manifest
    policy = load_policy(base_policy_config(out_dir))

``out_dir`` is a FLUX.1-dev-layout checkpoint (``transformer/``, ``vae/``, ``text_encoder*/``,
``tokenizer*/``, ``scheduler/``) plus ``policy_zoo.json`` (content key, curves, wall times), loaded by
:func:`cgrpo_core.policy.load_policy` through :func:`base_policy_config`. The reward side is
:func:`cgrpo_core.toy.zoo.rewards.build.train_reward_zoo`; both are keyed by content (config + toy world +
code version), which the ``toy-zoo`` flow uses to build each once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from cgrpo_core.policy import PolicyConfig
from cgrpo_core.schema import config_hash
from cgrpo_core.store import atomic_write_json, code_version, file_hash
from cgrpo_core.toy.zoo.policy.config import ZooPolicyConfig
from cgrpo_core.training.optim import Curve

__all__ = ["POLICY_MANIFEST", "base_policy_config", "policy_zoo_key", "read_manifest", "train_policy_zoo"]

POLICY_MANIFEST = "policy_zoo.json"


def policy_zoo_key(world_dir: str | Path, cfg: ZooPolicyConfig) -> str:
    """Content key of a policy zoo: its config, the toy world (world.json fixes it) and the code version."""
    world = file_hash(Path(world_dir) / "world.json")
    return config_hash(cfg, {"world": world, "code": code_version(__name__)})


def read_manifest(folder: str | Path, name: str) -> dict:
    """A zoo folder's manifest (``policy_zoo.json`` or ``reward_zoo.json``); a clear error if absent."""
    path = Path(folder) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {folder} is not a built zoo folder (build it first)")
    return json.loads(path.read_text(encoding="utf-8"))


def train_policy_zoo(
    world_dir: str | Path, out_dir: str | Path, cfg: ZooPolicyConfig, progress: bool = True, threads: int = 2
) -> dict[str, Curve]:
    """Build the tiny checkpoint in ``out_dir``, train its VAE, then its transformer, on the toy SynCD.

    Returns ``{"vae": curve, "base_policy": curve}`` and writes them, the content key and the wall time of
    each stage into ``out_dir/policy_zoo.json`` (written last: a folder without it is not a zoo).
    """
    # The trainers (diffusers) are imported here, not with this module: reading a built zoo stays light.
    from cgrpo_core.toy.zoo.policy.base_policy import build_base_checkpoint, train_toy_base_policy
    from cgrpo_core.toy.zoo.policy.vae import train_toy_vae

    out = Path(out_dir)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    seconds: dict[str, float] = {}
    try:
        start = time.perf_counter()
        build_base_checkpoint(world_dir, out, cfg)
        seconds["seconds_build"] = time.perf_counter() - start
        curves = {}
        for name, train in (("vae", train_toy_vae), ("base_policy", train_toy_base_policy)):
            start = time.perf_counter()
            curves[name] = train(world_dir, out, cfg, progress)
            seconds[f"seconds_{name}"] = time.perf_counter() - start
    finally:
        torch.set_num_threads(previous)
    manifest = {"key": policy_zoo_key(world_dir, cfg), "curves": curves, "seconds": seconds}
    atomic_write_json(out / POLICY_MANIFEST, manifest)
    return curves


def base_policy_config(folder: str | Path, policy: PolicyConfig | None = None) -> PolicyConfig:
    """``policy`` (default: float32, no LoRA) reading a policy zoo's base model: its folder, no UNO LoRA
    (the toy base is trained whole) and ``base_model = "toy-zoo/<zoo key>/flux"``, so that what is built on
    it is keyed by the zoo that trained it, never confused with FLUX.1-dev."""
    key = read_manifest(folder, POLICY_MANIFEST)["key"]
    policy = policy or PolicyConfig(dtype="float32", lora_rank=0)
    return policy.model_copy(
        update={
            "base_model": f"toy-zoo/{key}/flux",
            "model_folder": str(Path(folder).resolve()),
            "uno_lora": None,
            "uno_lora_file": None,
        }
    )
