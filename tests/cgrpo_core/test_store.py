"""Atomic writes and the content-addressed store: a failure never leaves a result that looks whole."""

import pytest

from cgrpo_core.store import ResultStore, atomic_write, atomic_write_json, atomic_write_text, file_hash


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


def test_result_store_builds_atomically(tmp_path):
    store = ResultStore(tmp_path)
    assert not store.exists("model", "abc")
    with pytest.raises(RuntimeError):
        with store.building("model", "abc") as staging:
            (staging / "weights.bin").write_bytes(b"partial")
            raise RuntimeError("crash")
    assert not store.exists("model", "abc") and not store.path("model", "abc").exists()
    assert list((tmp_path / "model").iterdir()) == []  # staging removed
    with store.building("model", "abc") as staging:
        (staging / "weights.bin").write_bytes(b"whole")
    assert store.exists("model", "abc")
    assert (store.path("model", "abc") / "weights.bin").read_bytes() == b"whole"


def test_result_store_keeps_the_first_complete_copy(tmp_path):
    store = ResultStore(tmp_path)
    with store.building("scores", "k1") as first:
        (first / "x").write_text("first")
    with store.building("scores", "k1") as second:  # a concurrent duplicate finishing later
        (second / "x").write_text("second")
    assert (store.path("scores", "k1") / "x").read_text() == "first"
    assert [p.name for p in (tmp_path / "scores").iterdir()] == ["k1"]


def test_result_store_replaces_an_incomplete_leftover(tmp_path):
    store = ResultStore(tmp_path)
    leftover = store.path("scores", "k2")
    leftover.mkdir(parents=True)
    (leftover / "x").write_text("from a crashed older run")
    with store.building("scores", "k2") as staging:
        (staging / "x").write_text("complete")
    assert (leftover / "x").read_text() == "complete"


def test_result_store_rejects_bad_names(tmp_path):
    with pytest.raises(ValueError, match="without '/'"):
        ResultStore(tmp_path).path("a/b", "k")
