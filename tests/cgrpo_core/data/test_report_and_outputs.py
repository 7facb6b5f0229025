"""Report counts, Parquet round trips and the files one filter pass writes (authors' training-list format)."""

import json

import pandas as pd
import pytest
from PIL import Image

from cgrpo_core.data.config import FilterConfig
from cgrpo_core.data.dreambench import REPO_DATA
from cgrpo_core.data.filtering import TRAIN_FIELDS, filter_sets
from cgrpo_core.data.prepare import (
    FILTER_OUTPUTS,
    read_issues,
    read_table,
    syncd_inputs_hash,
    write_filter_outputs,
    write_issues,
    write_table,
)
from cgrpo_core.data.report import filter_report, report_metrics
from cgrpo_core.data.syncd import Issue, read_syncd, set_table_schema
from tests.cgrpo_core.data.helpers import write_set
from tests.cgrpo_core.data.test_filtering import CFG, FIXTURE


def test_report_counts_per_reason_category_and_unreadable():
    decisions = filter_sets(FIXTURE, CFG)
    issues = [
        Issue("x/1.png", "unreadable image", "x"),
        Issue("x/2.png", "file missing", "x"),
        Issue("m.json", "bad"),
    ]
    report = filter_report(decisions, issues, CFG, num_pairs=5)
    assert report["kept"] == 5 and report["sets_read"] == 13
    assert report["removed"] == 8 + 2  # 8 rejected sets + 2 unreadable ones (set x, file m.json)
    assert report["removed_by_reason"] == {
        "single_image": 2,
        "missing_scores": 2,
        "near_duplicate": 2,
        "low_identity": 1,
        "low_aesthetic": 1,
        "not_top_k": 0,
        "unreadable": 2,
    }
    assert report["by_category"]["deformable"] == {"kept": 1, "removed": 0, "removed_by_reason": {}}
    assert report["by_category"]["rigid"]["kept"] == 4 and report["by_category"]["rigid"]["removed"] == 8
    assert len(report["issues"]) == 3 and report["issues"][0] == {
        "path": "x/1.png",
        "reason": "unreadable image",
        "set_id": "x",
    }
    metrics = report_metrics(report)
    assert (
        metrics["sets_kept"] == 5.0
        and metrics["removed_unreadable"] == 2.0
        and metrics["rigid_removed"] == 8.0
    )


def test_tables_round_trip_with_lists_and_nulls(tmp_path):
    write_table(
        FIXTURE,
        tmp_path / "t.parquet",
        set_table_schema().remove(set_table_schema().get_field_index("metadata_file")),
    )
    back = read_table(tmp_path / "t.parquet")
    assert back.to_dict("records") == FIXTURE.astype(object).to_dict("records")
    write_issues([Issue("a", "b", None)], tmp_path / "i.json")
    assert read_issues(tmp_path / "i.json") == [Issue("a", "b", None)]


def test_filter_outputs_in_the_authors_format(tmp_path):
    root = tmp_path / "syncd"
    write_set(
        root,
        "1",
        category="rigid",
        dino_scores=[[0, 0.9, 0.9], [0, 0, 0.9], [0, 0, 0]],
        aesthetics_scores={"0": 6, "1": 6, "2": 6},
        category_description="a red cup",
    )
    write_set(root, "2", category="rigid")  # unscored, no scores dir: missing_scores
    index = read_syncd(root)
    report = write_filter_outputs(index.sets, None, index.issues, FilterConfig(), tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(FILTER_OUTPUTS)
    assert report["kept"] == 1 and report["removed_by_reason"]["missing_scores"] == 1
    train = json.loads((tmp_path / "out" / "train.json").read_text())
    authors = json.loads((REPO_DATA / "reference" / "train_1w_syncd_embedding.json").read_text())[0]
    assert list(train[0]) == list(TRAIN_FIELDS) and set(TRAIN_FIELDS) <= set(authors)
    assert train[0]["id"] == "0" and train[0]["ref_img"].startswith("1/") and train[0]["category"] == "rigid"
    assert all(isinstance(v, str) for v in train[0].values())  # as in the authors' file
    decisions = read_table(tmp_path / "out" / "decisions.parquet")
    assert decisions.set_index("set_id")["reason"].to_dict() == {"1": "kept", "2": "missing_scores"}
    assert len(pd.read_parquet(tmp_path / "out" / "train.parquet")) == 1
    assert Image.open(tmp_path / "out" / "histograms.png").size[0] > 1000


def test_inputs_hash_follows_metadata_content(tmp_path):
    write_set(tmp_path, "1")
    first = syncd_inputs_hash(tmp_path)
    assert syncd_inputs_hash(tmp_path) == first
    (tmp_path / "1" / "0.png").write_bytes(b"changed image")  # images are not part of the hash
    assert syncd_inputs_hash(tmp_path) == first
    write_set(tmp_path, "1", category="deformable")
    assert syncd_inputs_hash(tmp_path) != first


@pytest.mark.parametrize("bad", [{"top_k": 0}, {"pairs_per_set": 0}, {"scope": "clique"}])
def test_filter_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        FilterConfig(**bad)
