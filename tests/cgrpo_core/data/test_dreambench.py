"""DreamBench reader: the authors' 750-item protocol, prompt kinds, bad input, and ToyBench through it."""

import json
import shutil

import pytest

from cgrpo_core.data.dreambench import (
    REPO_DATA,
    bench_files,
    format_prompt,
    parse_prompts_and_classes,
    read_dreambench,
    write_prompts_and_classes,
)

PROMPTS = REPO_DATA / "dreambench" / "prompts_and_classes.txt"
PROTOCOL = REPO_DATA / "reference" / "dreambench_singleip.json"


def test_real_dreambench_matches_the_authors_protocol_exactly(dreambench_root):
    items = read_dreambench(dreambench_root, PROMPTS, PROTOCOL)
    assert len(items) == 750 and items["subject"].nunique() == 30
    protocol = json.loads(PROTOCOL.read_text())
    # the authors' entries: "dreambooth/dataset/<subject>/<file>", prompt without the unique token
    theirs = [
        (e["image_paths"][0].split("/")[-2], e["prompt"], "/".join(e["image_paths"][0].split("/")[-2:]))
        for e in protocol
    ]
    ours = list(zip(items["subject"], items["prompt"], items["reference_image"], strict=True))
    assert ours == theirs
    assert all((dreambench_root / ref).is_file() for ref in items["reference_image"].unique())


def test_prompt_kinds_follow_dreambench_proportions(dreambench_root):
    items = read_dreambench(dreambench_root, PROMPTS, PROTOCOL)
    counts = items.groupby(["subject", "prompt_kind"]).size().unstack(fill_value=0)
    live = set(items.loc[items["live"], "subject"])
    assert live == {"cat", "cat2", "dog", "dog2", "dog3", "dog5", "dog6", "dog7", "dog8"}
    for subject, row in counts.iterrows():
        expected = (10, 10, 5) if subject in live else (20, 0, 5)
        assert (row["recontextualization"], row["accessorization"], row["property"]) == expected
    dog = items[items["subject"] == "dog"].set_index("prompt_index")["prompt"]
    assert (
        dog[0] == "a dog in the jungle"
        and dog[10] == "a dog wearing a red hat"
        and dog[24] == "a cube shaped dog"
    )


def test_without_a_protocol_the_first_image_is_the_reference(dreambench_root):
    items = read_dreambench(dreambench_root, PROMPTS)
    assert set(items.loc[items["subject"] == "dog3", "reference_image"]) == {
        "dog3/00.jpg"
    }  # protocol: 05.jpg


def test_prompts_file_round_trips_byte_for_byte():
    table = parse_prompts_and_classes(PROMPTS)
    assert len(table.classes) == 30 and len(table.object_templates) == 25 and len(table.live_templates) == 25
    assert write_prompts_and_classes(table) == PROMPTS.read_text()
    assert (
        format_prompt("a {0} {1} on top of pink fabric", "stuffed animal")
        == "a stuffed animal on top of pink fabric"
    )
    assert format_prompt("a {0} {1}", "dog", "sks") == "a sks dog"


def test_malformed_prompts_file_names_file_and_reason(tmp_path):
    bad = tmp_path / "prompts_and_classes.txt"
    bad.write_text(PROMPTS.read_text().replace("Live Subject Prompts", "Live Prompts"))
    with pytest.raises(ValueError, match=r"prompts_and_classes.txt: malformed prompts file, missing section"):
        parse_prompts_and_classes(bad)
    bad.write_text(PROMPTS.read_text().replace("backpack_dog,backpack", "backpack_dog backpack"))
    with pytest.raises(ValueError, match=r"malformed class line 'backpack_dog backpack'"):
        parse_prompts_and_classes(bad)
    bad.write_text(PROMPTS.read_text().replace("'a {0} {1} in the snow'", "'a {0} in the snow'"))
    with pytest.raises(ValueError, match=r"lacks the \{0\} \{1\} placeholders"):
        parse_prompts_and_classes(bad)


def test_missing_subject_folder_or_reference_is_a_clear_error(dreambench_root, tmp_path):
    root = tmp_path / "dataset"
    shutil.copytree(dreambench_root, root)
    shutil.rmtree(root / "vase")
    with pytest.raises(FileNotFoundError, match=r"vase: subject folder missing; download DreamBench"):
        read_dreambench(root, PROMPTS, PROTOCOL)
    shutil.copytree(dreambench_root / "vase", root / "vase")
    (root / "teapot" / "04.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"teapot/04.jpg: reference image missing"):
        read_dreambench(root, PROMPTS, PROTOCOL)


def test_toybench_is_read_by_the_same_reader(toy_world):
    root, prompts, protocol = bench_files(None, None, None, toy_world)
    items = read_dreambench(root, prompts, protocol)
    assert len(items) == 750 and items["subject"].nunique() == 30
    entries = json.loads(protocol.read_text())
    assert [(e["prompt"], e["image_paths"][0].split("/", 2)[2]) for e in entries] == list(
        zip(items["prompt"], items["reference_image"], strict=True)
    )
    # the same classes, the same multiplicities and the same templates as DreamBench
    table, real = parse_prompts_and_classes(prompts), parse_prompts_and_classes(PROMPTS)
    assert sorted(table.classes.values()) == sorted(real.classes.values())
    assert (table.object_templates, table.live_templates) == (real.object_templates, real.live_templates)
    assert items.groupby("prompt_kind").size().to_dict() == {
        "accessorization": 90,
        "property": 150,
        "recontextualization": 510,
    }


def test_bench_files_defaults(tmp_path, toy_world):
    root, prompts, protocol = bench_files(tmp_path, None, None)
    assert prompts == PROMPTS and protocol == PROTOCOL  # no prompts file in root: the repo's copy
    (tmp_path / "prompts_and_classes.txt").write_text("x")
    assert bench_files(tmp_path, None, None)[1] == tmp_path / "prompts_and_classes.txt"
    with pytest.raises(ValueError, match="no toy world folder"):
        bench_files(None, None, None)
