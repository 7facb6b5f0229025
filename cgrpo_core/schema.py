"""The machinery every config shares: a frozen pydantic base, the content hash, dotted paths.

- :class:`Frozen`: ``frozen=True, extra="forbid"`` (a misspelt field is an error, not a silent default),
  defaults validated. Every config section of the project derives from it.
- :func:`config_hash`: the identity of a result, a sha256 over the canonical JSON of the fields that
  determine it plus the hashes of its inputs. Fields marked ``json_schema_extra=NOT_HASHED`` (names,
  labels, folders, logging and speed settings) are left out, so renaming a run or moving a folder never
  recomputes it. Fields marked ``json_schema_extra=HASHED_WHEN_SET`` (options added later, whose default
  None keeps the behaviour before them) count only when set, so adding one keeps every existing key. The
  same string names the store folder, the Prefect cache key and the MLflow ``config_hash`` tag.
- :func:`flatten` (``{"grpo.tdw.w_max": 0.7, ...}``, MLflow params) and :func:`override` (a validated copy
  with dotted-path changes: profiles, presets, ``--set`` on the command line).

The experiment config itself (one root for everything) is :mod:`cgrpo_core.config`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

__all__ = [
    "HASHED_WHEN_SET",
    "HASH_LENGTH",
    "NOT_HASHED",
    "Frozen",
    "Profile",
    "config_hash",
    "flatten",
    "override",
]

Profile = Literal["paper", "toy", "test"]
NOT_HASHED: dict[str, Any] = {"hashed": False}
HASHED_WHEN_SET: dict[str, Any] = {"hashed": "when_set"}  # left out while None (the default)
HASH_LENGTH = 16  # hex characters kept: 64 bits, collision-free for any realistic number of results

M = TypeVar("M", bound=BaseModel)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


def _hashable(value: Any) -> Any:
    """Canonical JSON-able form: models without their unhashed fields, sorted keys, floats checked."""
    if isinstance(value, BaseModel):
        out = {}
        for name, info in type(value).model_fields.items():
            extra = info.json_schema_extra
            marker = extra.get("hashed", True) if isinstance(extra, dict) else True
            field = getattr(value, name)
            if marker is False or (marker == "when_set" and field is None):
                continue
            out[name] = _hashable(field)
        return out
    if isinstance(value, Mapping):
        return {str(k): _hashable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_hashable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"cannot hash a non-finite float ({value}); fix the config value")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)  # Paths, enums


def config_hash(cfg: BaseModel, inputs: Mapping[str, str] | None = None) -> str:
    """Stable content hash of the result-determining fields of ``cfg`` plus its inputs' hashes.

    Unchanged by field order and by unhashed fields (names, labels, folders); changed by any other
    field, by the config's type and by any input hash. Returns ``HASH_LENGTH`` hex characters.
    """
    payload = {
        "type": type(cfg).__name__,
        "config": _hashable(cfg),
        "inputs": dict(sorted((inputs or {}).items())),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def flatten(cfg: BaseModel | Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"grpo.tdw.w_max": 0.7, ...}``: every leaf field with a dotted path (MLflow params)."""
    data = cfg.model_dump() if isinstance(cfg, BaseModel) else cfg
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, prefix=f"{path}."))
        else:
            out[path] = value
    return out


def override(cfg: M, changes: Mapping[str, Any]) -> M:
    """A validated copy of ``cfg`` with dotted-path changes, e.g. ``{"grpo.tdw.schedule": "static"}``.

    Unknown paths are an error that lists the valid ones at that level.
    """
    data = cfg.model_dump()
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            if part not in node or not isinstance(node[part], dict):
                have = sorted(k for k, v in node.items() if isinstance(v, dict))
                raise ValueError(f"unknown config path {path!r}: no section {part!r} (have {have})")
            node = node[part]
        if leaf not in node:
            raise ValueError(f"unknown config path {path!r}: no field {leaf!r} (have {sorted(node)})")
        node[leaf] = value
    return type(cfg).model_validate(data)
