"""The training list and which pairs each step takes."""

from __future__ import annotations

import json

import pytest

from cgrpo_core.training.data import derive_seed, read_train_list, shard, step_pairs
from tests.cgrpo_core.policy.helpers import solid


def test_steps_visit_every_pair_once_per_epoch_in_a_seeded_order():
    n, per_step = 10, 4
    stream = [i for step in range(5) for i in step_pairs(n, per_step, seed=3, step=step)]  # 20 = 2 epochs
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:]) == list(range(10))
    assert stream[:10] != stream[10:]  # each epoch its own permutation
    assert step_pairs(n, per_step, 3, 2) == stream[8:12]  # a step is a pure function of (seed, step)
    assert step_pairs(n, per_step, 4, 0) != stream[:4]
    assert derive_seed(0, "rollout", 1, 0) != derive_seed(0, "rollout", 0, 1)


def test_shard_splits_a_step_contiguously_or_says_what_to_change():
    assert shard([5, 6, 7, 8], 0, 2) == [5, 6] and shard([5, 6, 7, 8], 1, 2) == [7, 8]
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        shard([1, 2, 3], 0, 2)


def test_read_train_list_reads_the_authors_format_and_names_bad_input(tmp_path):
    solid((10, 20, 30)).save(tmp_path / "ref.png")
    records = [{"ref_img": "ref.png", "img": "t.png", "text": "a cup", "category_description": "cup"}]
    (tmp_path / "train.json").write_text(json.dumps(records))
    (pair,) = read_train_list(tmp_path / "train.json", tmp_path)
    assert pair.reference == tmp_path / "ref.png" and pair.target == tmp_path / "t.png"
    assert pair.prompt == "a cup" and pair.subject == "cup"
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(ValueError, match="empty.json is empty"):
        read_train_list(tmp_path / "empty.json", tmp_path)
    (tmp_path / "bad.json").write_text(json.dumps([{"ref_img": "ref.png"}]))
    with pytest.raises(ValueError, match="record 0 has no text"):
        read_train_list(tmp_path / "bad.json", tmp_path)
    (tmp_path / "gone.json").write_text(json.dumps([{"ref_img": "nope.png", "text": "x"}]))
    with pytest.raises(ValueError, match="nope.png does not exist"):
        read_train_list(tmp_path / "gone.json", tmp_path)
    with pytest.raises(FileNotFoundError, match="run prepare-syncd"):
        read_train_list(tmp_path / "missing.json", tmp_path)
