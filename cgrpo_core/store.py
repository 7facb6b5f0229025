"""Atomic writes, the content-addressed result store, and the two hashes its keys are made of.

Every expensive result lives at ``<root>/<kind>/<key>/`` (DESIGN.md, "Reuse by content") and is made by
one primitive, :meth:`ResultStore.get_or_build`: the result if it is complete, else ``build(folder)`` into
a folder beside it that is renamed into place, with a ``_COMPLETE`` marker, only when ``build`` returns.
A killed run never leaves a half result that looks whole. Two kinds of build:

- short (the default): a fresh staging folder, deleted if ``build`` fails;
- resumable (long work such as a training run): a fixed working folder ``.<key>.work`` that survives a
  crash or a kill, so the next ``get_or_build`` hands ``build`` what the last one left (checkpoints,
  scored files) and it continues. A resumable ``build`` may also return ``False``: the work is as done as
  it can be for now (a scorer met unreadable files); the working folder is returned as it is, not
  marked complete, and the next call resumes it (the files may have been fixed meanwhile).

Builders of one key are serialised by an exclusive ``flock`` on ``.<key>.lock``: a second process waits
and then finds the result complete, so a result is computed once. The kernel releases the lock when its
holder dies, so a killed builder never blocks the next one (a lock on a network file system may not be
honoured: keep the store on a local disk, or give each machine its own).

Keys: :func:`cgrpo_core.schema.config_hash` of the config that determines a result, with its inputs'
hashes: :func:`file_hash` (a file), :func:`folder_fingerprint` (a folder of weights) and
:func:`code_version` (the code that computes it: the source of a module and of every ``cgrpo_core``
module it imports, transitively, without docstrings and comments, so editing prose recomputes nothing
while editing any line of code that could change the result recomputes it).
Single files go through :func:`atomic_write` (temp file, fsync, rename).
"""

from __future__ import annotations

import ast
import fcntl
import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = [
    "COMPLETE_MARKER",
    "ResultStore",
    "atomic_write",
    "atomic_write_csv",
    "atomic_write_json",
    "atomic_write_text",
    "code_version",
    "file_hash",
    "folder_fingerprint",
    "is_complete",
    "workspace",
]

COMPLETE_MARKER = "_COMPLETE"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the folder holding cgrpo_core/
FINGERPRINT_BYTES = 1 << 20  # bytes read at each end of a file by folder_fingerprint


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
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def folder_fingerprint(path: str | Path, length: int = 16) -> str:
    """A cheap identity of a weights folder (or file): every file's relative path, size and the sha256 of
    its first and last MiB. Two checkpoints of one architecture differ in their bytes there; reading
    whole multi-GB weights files for a key would cost minutes."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"cannot fingerprint {root}: it does not exist")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for file in files:
        size = file.stat().st_size
        with open(file, "rb") as handle:
            head = handle.read(FINGERPRINT_BYTES)
            handle.seek(max(size - FINGERPRINT_BYTES, 0))
            tail = handle.read(FINGERPRINT_BYTES)
        name = file.name if file == root else file.relative_to(root).as_posix()
        digest.update(f"{name}\0{size}\0".encode() + hashlib.sha256(head + tail).digest())
    return digest.hexdigest()[:length]


def _module_file(name: str) -> Path | None:
    """The source file of a ``cgrpo_core`` module or package, found on disk (nothing is imported)."""
    base = PACKAGE_ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _without_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return tree


def _imports(tree: ast.Module) -> set[str]:
    """``cgrpo_core`` modules a module imports: ``import a.b``, ``from a import b`` (b a module or not)."""
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name.split(".")[0] == "cgrpo_core":
                parts = name.split(".")
                found |= {".".join(parts[:k]) for k in range(1, len(parts) + 1)}  # packages run __init__
    return found


def _lazy_exports(tree: ast.Module, package: str) -> set[str]:
    """The submodules a package exports lazily (:mod:`cgrpo_core.lazy`): the keys of its ``_EXPORTS``
    dict. Code that imports a name from the package runs that submodule, as an eager import would."""
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(target, ast.Name) and target.id == "_EXPORTS" for target in node.targets)
            and isinstance(node.value, ast.Dict)
        ):
            keys = [key.value for key in node.value.keys if isinstance(key, ast.Constant)]
            return {f"{package}.{key}" for key in keys}
    return set()


@functools.cache
def code_version(*modules: str, length: int = 16) -> str:
    """Hash of the code of ``modules`` (dotted ``cgrpo_core`` names) and every ``cgrpo_core`` module they
    import, transitively; docstrings, comments and formatting do not count (module docstring)."""
    seen: dict[str, str] = {}
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        file = _module_file(name)
        if file is None:
            if name in modules:
                raise ValueError(f"code_version: {name!r} is not a cgrpo_core module")
            seen[name] = ""  # an imported name that is not a module (a function or class)
            continue
        tree = _without_docstrings(ast.parse(file.read_text(encoding="utf-8"), filename=str(file)))
        seen[name] = ast.dump(tree)
        found = _imports(tree) | (_lazy_exports(tree, name) if file.name == "__init__.py" else set())
        todo += sorted(found - set(seen))
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(f"{name}\0{seen[name]}\0".encode())
    return digest.hexdigest()[:length]


def is_complete(folder: str | Path) -> bool:
    """Is ``folder`` a complete result (not a resumable build's working folder)?"""
    return (Path(folder) / COMPLETE_MARKER).is_file()


class ResultStore:
    """Results addressed by ``(kind, key)``: ``root/kind/key/`` holds one complete result."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else workspace() / "outputs" / "store"

    def path(self, kind: str, key: str) -> Path:
        if not kind or "/" in kind or not key or "/" in key or key.startswith("."):
            raise ValueError(f"kind and key must be non-empty names without '/', got {kind!r}, {key!r}")
        return self.root / kind / key

    def exists(self, kind: str, key: str) -> bool:
        return is_complete(self.path(kind, key))

    def work_dir(self, kind: str, key: str) -> Path:
        """Where a resumable build of ``(kind, key)`` keeps its state until it completes."""
        final = self.path(kind, key)
        return final.parent / f".{key}.work"

    def get_or_build(
        self,
        kind: str,
        key: str,
        build: Callable[[Path], object],
        resumable: bool = False,
        lock_timeout: float | None = None,
    ) -> Path:
        """The complete result ``root/kind/key``, built by ``build(folder)`` first unless it exists.

        ``build`` writes the result into the folder it is given; the folder becomes the result when it
        returns. With ``resumable`` the folder is :meth:`work_dir`, kept across failures and kills (``build``
        resumes from what it finds there), and a ``build`` that returns ``False`` leaves it incomplete: that
        folder is returned (:func:`is_complete` tells). Otherwise the folder is a fresh staging folder,
        removed on failure. Builders of one key wait for each other (``lock_timeout`` seconds at most;
        None: as long as it takes).
        """
        final = self.path(kind, key)
        if self.exists(kind, key):
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        with self._lock(final.parent / f".{key}.lock", lock_timeout):
            if self.exists(kind, key):  # another process built it while we waited
                return final
            for leftover in final.parent.glob(f".{key}.*.building"):  # of builders killed mid-build
                shutil.rmtree(leftover, ignore_errors=True)  # (we hold the lock: nobody else builds it)
            if resumable:
                work = self.work_dir(kind, key)
                work.mkdir(exist_ok=True)
            else:
                work = final.parent / f".{key}.{uuid.uuid4().hex[:8]}.building"
                work.mkdir()
            try:
                done = build(work)
            except BaseException:
                if not resumable:
                    shutil.rmtree(work, ignore_errors=True)
                raise
            if resumable and done is False:
                return work  # incomplete for now: the next call resumes it
            (work / COMPLETE_MARKER).write_text("")
            if final.exists():
                shutil.rmtree(final)  # a stale incomplete result from an older layout
            os.rename(work, final)
        return final

    @staticmethod
    @contextmanager
    def _lock(path: Path, timeout: float | None) -> Iterator[None]:
        with open(path, "a+") as handle:
            start = time.monotonic()
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if timeout is not None and time.monotonic() - start > timeout:
                        handle.seek(0)
                        holder = handle.read().strip() or "unknown"
                        raise TimeoutError(
                            f"{path} is held by another build ({holder}) for more than {timeout} s; wait for "
                            "it, or stop that process (a killed holder releases the lock)"
                        ) from None
                    time.sleep(0.2)
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}\n")
            handle.flush()
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
