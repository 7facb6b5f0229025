"""Lazy package exports: ``from cgrpo_core.policy import rollout`` imports ``sampling`` (and torch,
diffusers) when the name is first used, not when any module of the package is imported.

A package's config module (``cgrpo_core.policy.config``, ``cgrpo_core.rewards.config``) is imported by every
process that reads an experiment config: the CLIs, the Prefect flow run that only sequences rows, the
serving process. Importing it ran the package's ``__init__``, which imported the whole policy (diffusers)
and every reward (transformers' image processors): about 4 s of a 2-core machine's time in each of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence


def lazy_exports(package: str, exports: Mapping[str, Sequence[str]]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package``, where ``exports`` maps each submodule (relative to the
    package) to the names it exports. A resolved name is cached in the package."""
    module = importlib.import_module(package)
    source = {name: submodule for submodule, names in exports.items() for name in names}

    def __getattr__(name: str):
        if name not in source:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{source[name]}"), name)
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(module), *source})

    return __getattr__, __dir__
