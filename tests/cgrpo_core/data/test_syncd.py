"""SynCD reader: both on-disk layouts into one table; each problem is an issue naming file and reason."""

import json
import re

import pytest

from cgrpo_core.data.syncd import read_syncd
from tests.cgrpo_core.data.helpers import write_image, write_mask, write_set

DINO = [[0.0, 0.9, 0.8], [0.0, 0.0, 0.7], [0.0, 0.0, 0.0]]


def test_per_set_layout_with_scores_and_descriptions(tmp_path):
    write_set(
        tmp_path,
        "2",
        category="rigid",
        dino_scores=DINO,
        aesthetics_scores={"2": 5.0, "0": 6.0, "1": 7.0},
        category_description="a red cup",
    )
    write_set(tmp_path, "10", n=2, category="deformable")
    index = read_syncd(tmp_path)
    assert index.issues == []
    assert list(index.sets["set_id"]) == ["2", "10"]  # natural order
    first, second = index.sets.iloc[0], index.sets.iloc[1]
    assert first["images"] == ["2/0.png", "2/1.png", "2/2.png"] and first["masks"][2] == "2/masks/2.png"
    assert first["dino_scores"] == DINO and first["aesthetics"] == [
        6.0,
        7.0,
        5.0,
    ]  # keyed by stem, filename order
    assert first["category_description"] == "a red cup" and first["metadata_file"] == "2/metadata.json"
    # no description in the item: the words all prompts start with ("a red cup view 0", "a red cup view 1")
    assert second["category_description"] == "a red cup view" and second["num_images"] == 2
    assert second["dino_scores"] is None and second["aesthetics"] is None


def test_root_level_list_as_syncd_generates_it(tmp_path):
    items = []
    for set_id in ("s1", "s2"):
        for k in range(2):
            write_image(tmp_path / set_id / f"{k}.jpg")
            write_mask(tmp_path / set_id / "masks" / f"{k}.jpg")
        items.append(
            {"filenames": [f"{set_id}/0.jpg", f"{set_id}/1.jpg"], "prompts": ["x", "y"], "category": "rigid"}
        )
    for k in range(2):  # a flat set: images in the root itself
        write_image(tmp_path / f"cat_{k}.jpg")
        write_mask(tmp_path / "masks" / f"cat_{k}.jpg")
    items.append(
        {
            "filenames": ["cat_0.jpg", "cat_1.jpg"],
            "prompts": ["A Frog, perched on a bank", "Amphibian perched on a bank"],
            "category": "deformable",
        }
    )
    (tmp_path / "metadata_0.json").write_text(json.dumps(items))
    index = read_syncd(tmp_path)
    assert index.issues == []
    assert list(index.sets["set_id"]) == ["metadata_0-2", "s1", "s2"]
    flat = index.sets.iloc[0]
    assert flat["images"] == ["cat_0.jpg", "cat_1.jpg"] and flat["masks"] == [
        "masks/cat_0.jpg",
        "masks/cat_1.jpg",
    ]
    assert flat["category_description"] == "deformable"  # prompts share no leading words: the category


def test_scored_metadata_replaces_its_plain_twin(tmp_path):
    folder = write_set(tmp_path, "7", n=2)
    entry = json.loads((folder / "metadata.json").read_text())[0]
    entry.update(dino_scores=[[0, 0.5], [0, 0]], aesthetics_scores={"0": 1.0, "1": 2.0})
    (folder / "metadata_with_scores.json").write_text(json.dumps([entry]))
    index = read_syncd(tmp_path)
    assert len(index.sets) == 1 and index.sets.iloc[0]["metadata_file"] == "7/metadata_with_scores.json"
    assert index.sets.iloc[0]["aesthetics"] == [1.0, 2.0]


def test_partial_aesthetics_count_as_missing(tmp_path):
    write_set(tmp_path, "1", n=2, dino_scores=[[0, 0.5], [0, 0]], aesthetics_scores={"0": 1.0})
    row = read_syncd(tmp_path).sets.iloc[0]
    assert row["dino_scores"] == [[0, 0.5], [0, 0]] and row["aesthetics"] is None


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda f: (f / "metadata.json").write_text('[{"filenames": '), "malformed JSON"),
        (
            lambda f: (f / "metadata.json").write_text('{"prompts": []}'),
            "'filenames' must be a non-empty list",
        ),
        (lambda f: (f / "1.png").unlink(), "image .*1.png is missing"),
        (lambda f: (f / "masks" / "2.png").unlink(), r"mask masks/2.png \(or .jpg\) of .*2.png is missing"),
        (
            lambda f: (f / "metadata.json").write_text(
                json.dumps([{"filenames": ["0.png", "1.png", "2.png"], "prompts": ["a", "b"]}])
            ),
            "'prompts' must be a list of 3",
        ),
        (
            lambda f: (f / "metadata.json").write_text(
                json.dumps(
                    [
                        {
                            "filenames": ["0.png", "1.png", "2.png"],
                            "prompts": ["a"] * 3,
                            "dino_scores": [[0, 1]],
                        }
                    ]
                )
            ),
            "dino_scores must be a 3x3 matrix",
        ),
        (
            lambda f: (f / "metadata.json").write_text(
                json.dumps(
                    [
                        {
                            "filenames": ["0.png", "1.png", "2.png"],
                            "prompts": ["a"] * 3,
                            "aesthetics_scores": {"0": "high", "1": 1, "2": 1},
                        }
                    ]
                )
            ),
            "aesthetics_scores must be finite numbers",
        ),
    ],
)
def test_bad_input_becomes_an_issue_and_the_rest_is_read(tmp_path, damage, reason):
    write_set(tmp_path, "good")
    damage(write_set(tmp_path, "bad"))
    index = read_syncd(tmp_path)
    assert list(index.sets["set_id"]) == ["good"]
    assert len(index.issues) == 1
    issue = index.issues[0]
    assert issue.set_id == "bad" and issue.path.endswith("bad/metadata.json")
    assert re.search(reason, issue.reason), issue.reason


def test_missing_or_empty_root_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="SynCD folder not found"):
        read_syncd(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no metadata.json found"):
        read_syncd(tmp_path)


def test_reads_the_toy_syncd_without_issues(toy_world):
    index = read_syncd(toy_world / "syncd")
    assert index.issues == [] and len(index.sets) == 60
    assert set(index.sets["category"]) == {"rigid", "deformable"}
    assert index.sets["dino_scores"].isna().all()  # the toy SynCD ships without scores: the scorer fills them


@pytest.mark.parametrize("broken", ["1.png", "masks/2.png"])
def test_a_corrupt_file_of_a_pre_scored_set_is_an_issue(tmp_path, broken):
    """The scorer never decodes a set that ships with scores, so the reader checks its files."""
    write_set(tmp_path, "good", dino_scores=DINO, aesthetics_scores={"0": 6.0, "1": 7.0, "2": 5.0})
    bad = write_set(tmp_path, "bad", dino_scores=DINO, aesthetics_scores={"0": 6.0, "1": 7.0, "2": 5.0})
    (bad / broken).write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    index = read_syncd(tmp_path)
    assert list(index.sets["set_id"]) == ["good"]
    (issue,) = index.issues
    assert issue.set_id == "bad" and f"bad/{broken} is not a readable image" in issue.reason
