"""Atomic writes and the content-addressed result store.

Every expensive result lives at ``<root>/<kind>/<hash>/`` (DESIGN.md, "Reuse by content"). A result
directory is built under a temporary name beside its final place and renamed into place only when it is
complete, with a ``_COMPLETE`` marker written last, so a killed run never leaves a half result that
looks whole. Single files go through :func:`atomic_write` (temp file, fsync, rename).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = [
    "ResultStore",
    "atomic_write",
    "atomic_write_csv",
    "atomic_write_json",
    "atomic_write_text",
    "file_hash",
    "workspace",
]

COMPLETE_MARKER = "_COMPLETE"


def workspace() -> Path:
    """Root for generated data, results and the default MLflow store: ``$CGRPO_WORKSPACE`` or the cwd."""
    return Path(os.environ.get("CGRPO_WORKSPACE") or Path.cwd()).resolve()


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync and rename it onto ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return Path(path)


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_write_csv(path: str | Path, frame) -> Path:
    """Write a pandas DataFrame as CSV atomically."""
    with atomic_write(path, "w", encoding="utf-8", newline="") as handle:
        frame.to_csv(handle, index=False)
    return Path(path)


def file_hash(path: str | Path, length: int = 16) -> str:
    """sha256 of a file's bytes (first ``length`` hex characters): an input hash for config_hash."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


class ResultStore:
    """Results addressed by ``(kind, hash)``: ``root/kind/hash/`` holds one complete result."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else workspace() / "outputs" / "store"

    def path(self, kind: str, key: str) -> Path:
        if not kind or "/" in kind or not key or "/" in key:
            raise ValueError(f"kind and key must be non-empty names without '/', got {kind!r}, {key!r}")
        return self.root / kind / key

    def exists(self, kind: str, key: str) -> bool:
        return (self.path(kind, key) / COMPLETE_MARKER).is_file()

    @contextmanager
    def building(self, kind: str, key: str) -> Iterator[Path]:
        """Yield an empty staging directory; on success it becomes ``path(kind, key)`` atomically.

        If another process finished the same result meanwhile, its copy is kept and ours discarded
        (both are the same content by construction).
        """
        final = self.path(kind, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.parent / f".{key}.{uuid.uuid4().hex[:8]}.building"
        staging.mkdir()
        try:
            yield staging
            (staging / COMPLETE_MARKER).write_text("")
            if final.exists() and not (final / COMPLETE_MARKER).is_file():
                shutil.rmtree(final)  # a stale incomplete result from an older layout or a crash
            try:
                os.rename(staging, final)
            except OSError:
                if not self.exists(kind, key):
                    raise
                shutil.rmtree(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
