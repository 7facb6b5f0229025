"""Atomic writes, the store's one build-once primitive, and the hashes keys are made of.

A failure never leaves a result that looks whole; concurrent builders of one key compute it once; a killed
builder never blocks the next; a resumable build continues from what the last one left.
"""

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from cgrpo_core import store as store_module
from cgrpo_core.store import (
    COMPLETE_MARKER,
    ResultStore,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    code_version,
    file_hash,
    folder_fingerprint,
    is_complete,
)
from tests.conftest import REPO_ROOT


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "result.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write("half of the new content")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.txt"]  # no temp file left
    atomic_write_json(target, {"b": 1, "a": 2})
    assert target.read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'


def test_file_hash(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    assert file_hash(a) == file_hash(b) and len(file_hash(a)) == 16
    b.write_bytes(b"different")
    assert file_hash(a) != file_hash(b)


def test_get_or_build_builds_once_and_never_shows_a_half_result(tmp_path):
    store, calls = ResultStore(tmp_path), []

    def crash(folder):
        (folder / "weights.bin").write_bytes(b"partial")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        store.get_or_build("model", "abc", crash)
    assert not store.exists("model", "abc") and not store.path("model", "abc").exists()
    assert [p.name for p in (tmp_path / "model").iterdir()] == [".abc.lock"]  # staging removed

    def build(folder):
        calls.append(folder)
        (folder / "weights.bin").write_bytes(b"whole")

    path = store.get_or_build("model", "abc", build)
    assert path == store.path("model", "abc") and is_complete(path)
    assert (path / "weights.bin").read_bytes() == b"whole"
    assert store.get_or_build("model", "abc", build) == path and len(calls) == 1  # found, not rebuilt


def test_get_or_build_removes_the_staging_folder_of_a_killed_builder(tmp_path):
    store = ResultStore(tmp_path)
    killed = tmp_path / "model" / ".abc.1234abcd.building"  # a builder killed by SIGKILL leaves this
    killed.mkdir(parents=True)
    (killed / "weights.bin").write_bytes(b"partial")
    store.get_or_build("model", "abc", lambda folder: (folder / "weights.bin").write_bytes(b"whole"))
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [".abc.lock", "abc"]


def test_get_or_build_replaces_an_incomplete_leftover(tmp_path):
    store = ResultStore(tmp_path)
    leftover = store.path("scores", "k2")
    leftover.mkdir(parents=True)
    (leftover / "x").write_text("from a crashed older layout")
    path = store.get_or_build("scores", "k2", lambda folder: (folder / "x").write_text("complete"))
    assert (path / "x").read_text() == "complete" and (path / COMPLETE_MARKER).is_file()


def test_a_resumable_build_continues_from_its_working_folder(tmp_path):
    store, seen = ResultStore(tmp_path), []

    def train(folder):
        done = sorted(p.name for p in folder.glob("step*"))
        seen.append(done)
        for step in range(len(done), 3):
            (folder / f"step{step}").write_text("checkpoint")
            if step == 1 and len(seen) == 1:
                raise KeyboardInterrupt("killed after step 1")

    with pytest.raises(KeyboardInterrupt):
        store.get_or_build("run", "r1", train, resumable=True)
    work = store.work_dir("run", "r1")
    assert sorted(p.name for p in work.iterdir()) == ["step0", "step1"] and not store.exists("run", "r1")
    path = store.get_or_build("run", "r1", train, resumable=True)
    assert seen == [[], ["step0", "step1"]]  # the second call resumed: step0 and step1 were not redone
    assert sorted(p.name for p in path.iterdir()) == [COMPLETE_MARKER, "step0", "step1", "step2"]
    assert not work.exists()


def test_a_resumable_build_may_stay_incomplete(tmp_path):
    store = ResultStore(tmp_path)
    first = store.get_or_build(
        "scores", "s", lambda folder: (folder / "a.json").write_text("{}") and False, True
    )
    assert first == store.work_dir("scores", "s") and not is_complete(first)
    second = store.get_or_build("scores", "s", lambda folder: (folder / "b.json").write_text("{}"), True)
    assert is_complete(second) and sorted(p.name for p in second.glob("*.json")) == ["a.json", "b.json"]


def test_result_store_rejects_bad_names(tmp_path):
    with pytest.raises(ValueError, match="without '/'"):
        ResultStore(tmp_path).path("a/b", "k")
    with pytest.raises(ValueError, match="without '/'"):
        ResultStore(tmp_path).path("a", ".hidden")


def _count_build(root, log):
    def build(folder):
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        (folder / "x").write_text("done")

    ResultStore(root).get_or_build("shared", "key", build)


def test_concurrent_builders_of_one_key_compute_it_once(tmp_path):
    log = tmp_path / "builds.log"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_count_build, args=(tmp_path / "store", log)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert len(log.read_text().splitlines()) == 1  # one build, two waiters that found it complete
    assert ResultStore(tmp_path / "store").exists("shared", "key")


def test_a_killed_builder_does_not_block_the_next(tmp_path):
    code = textwrap.dedent(
        f"""
        import time
        from cgrpo_core.store import ResultStore
        def hang(folder):
            print("building", flush=True)
            time.sleep(600)
        ResultStore({str(tmp_path)!r}).get_or_build("shared", "key", hang, resumable=True)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "building"  # it holds the lock now
    store = ResultStore(tmp_path)
    with pytest.raises(TimeoutError, match="held by another build"):
        store.get_or_build("shared", "key", lambda folder: None, resumable=True, lock_timeout=0.5)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    path = store.get_or_build("shared", "key", lambda folder: (folder / "x").write_text("ok"), True, 10)
    assert (path / "x").read_text() == "ok"


def test_folder_fingerprint_follows_the_bytes_not_the_location(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name / "vae").mkdir(parents=True)
        (tmp_path / name / "vae" / "weights.bin").write_bytes(b"\x00" * 5000 + b"\x01")
    assert folder_fingerprint(tmp_path / "a") == folder_fingerprint(tmp_path / "b")
    (tmp_path / "b" / "vae" / "weights.bin").write_bytes(b"\x00" * 5000 + b"\x02")
    assert folder_fingerprint(tmp_path / "a") != folder_fingerprint(tmp_path / "b")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        folder_fingerprint(tmp_path / "missing")


def _fake_package(root, helper_body):
    pkg = root / "cgrpo_core"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text('"""The package."""\n')
    (pkg / "helper.py").write_text(helper_body)
    entry = '"""Entry: uses the helper."""\n\nfrom cgrpo_core.helper import scale\n\n\n'
    (pkg / "entry.py").write_text(entry + "def run(x):\n    return scale(x)\n")


def test_code_version_follows_code_not_prose(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "PACKAGE_ROOT", tmp_path)

    def version(body):
        _fake_package(tmp_path, body)
        code_version.cache_clear()
        return code_version("cgrpo_core.entry")

    base = version('"""Scale."""\n\n\ndef scale(x):\n    return 2 * x\n')
    reworded = version('"""Scale by two; reworded."""\n\n\ndef scale(x):  # a comment\n    return 2 * x\n')
    changed = version('"""Scale."""\n\n\ndef scale(x):\n    return 3 * x\n')  # a helper imported by the entry
    assert base == reworded and base != changed
    code_version.cache_clear()
    with pytest.raises(ValueError, match="not a cgrpo_core module"):
        code_version("cgrpo_core.nowhere")
    code_version.cache_clear()


def test_code_version_follows_a_packages_lazy_exports(tmp_path, monkeypatch):
    """``from cgrpo_core.pkg import scale``, where ``pkg/__init__.py`` exports ``scale`` lazily from
    ``pkg/helper.py`` (cgrpo_core/lazy.py): the entry's version changes with the helper's code."""
    monkeypatch.setattr(store_module, "PACKAGE_ROOT", tmp_path)
    pkg = tmp_path / "cgrpo_core" / "pkg"
    pkg.mkdir(parents=True)
    (tmp_path / "cgrpo_core" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text(
        "from cgrpo_core.lazy import lazy_exports\n\n"
        '_EXPORTS = {"helper": ("scale",)}\n'
        "__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)\n"
    )
    (tmp_path / "cgrpo_core" / "entry.py").write_text("from cgrpo_core.pkg import scale\n")

    def version(factor):
        (pkg / "helper.py").write_text(f"def scale(x):\n    return {factor} * x\n")
        code_version.cache_clear()
        return code_version("cgrpo_core.entry")

    assert version(2) == version(2) != version(3)
    code_version.cache_clear()


def test_lazy_exports_import_at_first_use_and_name_what_is_missing():
    import subprocess
    import sys

    probe = (
        "import sys, cgrpo_core.rewards as r; assert 'cgrpo_core.rewards.registry' not in sys.modules;"
        " assert 'RewardSet' in dir(r); from cgrpo_core.rewards import RewardSet;"
        " assert 'cgrpo_core.rewards.registry' in sys.modules and r.RewardSet is RewardSet; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr
    import cgrpo_core.policy

    with pytest.raises(AttributeError, match="'cgrpo_core.policy' has no attribute 'nothing'"):
        cgrpo_core.policy.nothing  # noqa: B018
