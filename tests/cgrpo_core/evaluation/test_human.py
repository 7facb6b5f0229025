"""Human evaluation (cgrpo_core/evaluation/human.py): the balanced draw, the blinded export (no leak, hashes
that catch edits), answer checking (one test per kind of bad file) and the statistics, against values
derived by hand in the comments."""

from __future__ import annotations

import json
import math
import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cgrpo_core.evaluation import human
from cgrpo_core.evaluation.human import (
    Answer,
    AnswerError,
    build_export,
    check_answers,
    check_key,
    draw_pairs,
    even_split,
    export_digest,
    pair_images,
    read_answers,
    verify_export,
    write_export,
)
from cgrpo_core.evaluation.human_stats import analyse, fleiss, pearson, spearman, wilson_interval

METRICS = {"dino": "toy DINO v1", "clip_i": "toy CLIP", "clip_t": "toy CLIP", "hpsv3": "toy HPSv3"}
# DreamBench's layout: (live, kind) -> prompts per subject
PROMPTS = {(False, "recontextualization"): 20, (False, "property"): 5, (True, "recontextualization"): 10,
           (True, "accessorization"): 10, (True, "property"): 5}  # fmt: skip
ROWS = {
    "a": {"row": "table-2/customized-grpo", "label": "Customized-GRPO", "model_key": "3f0c9d1e22b7a8c4",
          "eval_key": "9a8b7c6d5e4f3a2b"},
    "b": {"row": "table-2/uno-base", "label": "UNO (Base)", "model_key": "b0947cf4bb1ca1a7",
          "eval_key": "351234486524944e"},
}  # fmt: skip


def plan(objects: int, live: int, images: int, scale: float = 1.0) -> pd.DataFrame:
    """A score table in DreamBench's layout (prompt counts times ``scale``), random metric scores."""
    rng = np.random.default_rng(0)
    rows, item = [], 0
    for s in range(objects + live):
        is_live = s >= objects
        for (kind_live, kind), count in PROMPTS.items():
            if kind_live != is_live:
                continue
            for p in range(max(1, round(count * scale))):
                subject = f"s{s:02d}"
                for k in range(images):
                    row = {
                        "item": item,
                        "image_index": k,
                        "seed": item * 10 + k,
                        "subject": subject,
                        "kind": kind,
                    }
                    row |= {
                        "live": is_live,
                        "prompt": f"a {subject} {kind} {p}",
                        "reference": f"/bench/{subject}.png",
                    }
                    row["file_name"] = f"images/{item:04d}_{k}.png"
                    rows.append(row | {m: float(rng.random()) for m in METRICS})
                item += 1
    return pd.DataFrame(rows)


def test_even_split_fills_evenly_within_capacities():
    rng = np.random.default_rng(0)
    assert even_split(10, [2, 10, 10], rng) == [2, 4, 4]  # 10 / 3 -> 3 each, the full cell's 1 goes on
    counts = even_split(7, [5, 5, 5], rng)
    assert sum(counts) == 7 and sorted(counts) == [2, 2, 3]
    with pytest.raises(ValueError, match="cannot draw 11"):
        even_split(11, [5, 5], rng)


def test_the_draw_is_balanced_over_types_kinds_subjects_and_sides():
    images = pair_images(plan(21, 9, 4), plan(21, 9, 4), list(METRICS))  # DreamBench: 3,000 images
    drawn = draw_pairs(images, 200, seed=0)
    cells = drawn.groupby(["subject_type", "kind"]).size().to_dict()
    # 100 object pairs over 2 kinds, 100 live pairs over 3 kinds (34 + 33 + 33)
    assert cells[("object", "recontextualization")] == cells[("object", "property")] == 50
    live = [cells[("live", k)] for k in ("recontextualization", "accessorization", "property")]
    assert sorted(live) == [33, 33, 34]
    per_subject = drawn.groupby(["subject_type", "kind", "subject"]).size().groupby(level=[0, 1])
    assert (per_subject.max() - per_subject.min()).max() <= 1  # subjects even within each cell
    assert drawn["subject"].nunique() == 30 and not drawn["item"].duplicated().any()
    assert (drawn["a_side"] == "A").sum() == 100  # row a on the left in exactly half the pairs
    lead = drawn.assign(a=(drawn["a_side"] == "A").astype(int) * 2 - 1).groupby(["subject_type", "kind"])["a"]
    assert lead.sum().abs().max() <= 1  # and within each cell, off by at most one
    assert drawn["position"].tolist() == list(range(200))
    again = draw_pairs(images, 200, seed=0)
    assert again.equals(drawn) and not draw_pairs(images, 200, seed=1)["item"].equals(drawn["item"])


def test_more_pairs_than_items_take_second_images_of_distinct_items():
    images = pair_images(plan(2, 1, 3, scale=0.2), plan(2, 1, 3, scale=0.2), list(METRICS))
    items = images["item"].nunique()
    drawn = draw_pairs(images, items + 2, seed=0)
    assert drawn["item"].nunique() == items and len(drawn) == items + 2
    with pytest.raises(ValueError, match="between 1 and"):
        draw_pairs(images, len(images) + 1, seed=0)


def test_unpaired_rows_are_refused():
    a, b = plan(2, 1, 2, scale=0.2), plan(2, 1, 2, scale=0.2)
    b.loc[3, "seed"] += 1
    with pytest.raises(ValueError, match="not paired.*same evaluation settings"):
        pair_images(a, b, list(METRICS))
    with pytest.raises(ValueError, match="lacks the columns"):
        pair_images(a.drop(columns="seed"), b, list(METRICS))


# ---- the export --------------------------------------------------------------------------------------


def _write_images(folder: Path, scores: pd.DataFrame, shade: int) -> None:
    for row in scores.itertuples():
        path = folder / row.file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.new("RGB", (4, 4), (shade, row.item % 256, row.image_index * 40))
        image.save(path, pnginfo=_text_chunk(f"{row.file_name} from {folder}"))  # metadata that must not leak


def _text_chunk(text: str):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", text)
    return info


@pytest.fixture
def study(tmp_path):
    """Two evaluated rows (tiny images) of a 3-subject benchmark, exported with 10 pairs."""
    scores = plan(2, 1, 2, scale=0.4)
    scores["reference"] = [str(tmp_path / "bench" / s / "00.png") for s in scores["subject"]]
    for reference in set(scores["reference"]):
        Path(reference).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4), (9, 9, 9)).save(reference, pnginfo=_text_chunk(reference))
    folders = {}
    for shade, side in ((200, "a"), (50, "b")):
        folders[side] = tmp_path / "store" / "evaluated" / ROWS[side]["eval_key"]
        _write_images(folders[side], scores, shade)
    drawn = draw_pairs(pair_images(scores, scores, list(METRICS)), 10, seed=0)
    export = build_export(drawn, folders, ROWS, METRICS, {"pairs": 10, "seed": 0})
    folder = write_export(export, tmp_path / "export")
    return export, folder, scores, folders


def _png_chunks(data: bytes) -> list[str]:
    chunks, offset = [], 8
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        chunks.append(data[offset + 4 : offset + 8].decode("ascii"))
        offset += 12 + length
    return chunks


def test_no_exported_file_names_the_models(study):
    export, folder, scores, folders = study
    secrets = [v for side in ROWS.values() for v in side.values()] + [str(f) for f in folders.values()]
    secrets += sorted(set(scores["file_name"])) + [Path(f).name for f in scores["file_name"]]
    secrets += sorted(set(scores["reference"])) + ["customized", "grpo", "uno", "sft", "base)"]
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert {p.relative_to(folder).as_posix() for p in files} == set(export.files)
    for path in files:
        data = path.read_bytes()
        if path.suffix == ".png":
            assert _png_chunks(data) == ["IHDR", "IDAT", "IEND"], path  # no text chunk carried over
            continue
        text = re.sub(
            r"data:image/png;base64,[A-Za-z0-9+/=]+", "", data.decode()
        ).lower()  # the images: above
        found = [s for s in secrets if s.lower() in text]
        assert found == [], f"{path.name} names {found}"


def test_the_page_holds_every_pair_of_pairs_csv(study):
    export, folder, _, _ = study
    page = (folder / "page.html").read_text()
    data = json.loads(re.search(r'id="study-data">(.*?)</script>', page, re.S).group(1))
    listing = pd.read_csv(folder / "pairs.csv")
    assert (
        [p["id"] for p in data["pairs"]]
        == listing["pair_id"].tolist()
        == [p["pair_id"] for p in export.key["pairs"]]
    )
    assert listing["pair_id"].str.fullmatch(rf"{export.key['study']}-\d{{3}}").all()
    assert all(
        (folder / f).is_file() for f in listing[["reference", "image_a", "image_b"]].to_numpy().ravel()
    )
    assert "http" not in re.sub(r"data:[^\"]+", "", page)  # nothing fetched


def test_the_sides_in_the_key_match_the_images(study):
    export, folder, _, folders = study
    for pair in export.key["pairs"]:
        a = Image.open(folder / "images" / f"{pair['pair_id']}-{pair['a_side']}.png").getpixel((0, 0))
        assert a[0] == 200  # row a's shade
        assert pair["scores"]["a"].keys() == METRICS.keys()


def test_the_export_is_deterministic_and_its_hash_catches_edits(study, tmp_path):
    export, folder, scores, folders = study
    drawn = draw_pairs(pair_images(scores, scores, list(METRICS)), 10, seed=0)
    assert build_export(drawn, folders, ROWS, METRICS, {"pairs": 10, "seed": 0}).key == export.key
    check_key(export.key)
    verify_export(export.key, folder)
    assert export.export_hash == export_digest(export.key["files"]) and len(export.export_hash) == 16
    tampered = {**export.key, "export_hash": "0" * 16}
    with pytest.raises(ValueError, match="was edited: its export_hash"):
        check_key(tampered)
    page = folder / "page.html"
    page.write_text(page.read_text().replace("Which image is better?", "Pick A"))
    with pytest.raises(ValueError, match=r"not the export .* changed \['page.html'\]"):
        verify_export(export.key, folder)
    (folder / "extra.txt").write_text("x")
    with pytest.raises(ValueError, match=r"extra \['extra.txt'\]"):
        verify_export(export.key, folder)
    with pytest.raises(ValueError, match="already holds files that are not this export"):
        write_export(export, folder)


# ---- answers -----------------------------------------------------------------------------------------

# Four pairs, row a shown as A in p1 and p3. Scores: (row a, row b) per pair.
KEY_PAIRS = [("s-1", "A", 0.9, 0.5, 0.1), ("s-2", "B", 0.7, 0.6, 0.1), ("s-3", "A", 0.2, 0.5, -0.2),
             ("s-4", "B", 0.5, 0.5, 0.0)]  # fmt: skip


def constructed_key() -> dict:
    """dino: score(A) - score(B) = 0.4, -0.1, -0.3, 0.0; clip_i: 0.1, 0.1, -0.2, 0.0 (ties)."""
    pairs = []
    for pair_id, side, a, b, clip_shown in KEY_PAIRS:
        sign = 1 if side == "A" else -1
        clip = {"a": sign * clip_shown, "b": 0.0}
        scores = {
            s: {"dino": v, "clip_i": clip[s], "clip_t": 0.3, "hpsv3": 5.0} for s, v in (("a", a), ("b", b))
        }
        pairs.append({"pair_id": pair_id, "a_side": side, "scores": scores})
    files = {"page.html": "0" * 64}
    return {"format": human.KEY_FORMAT, "study": "s", "export_hash": export_digest(files), "files": files,
            "metrics": METRICS, "pairs": pairs}  # fmt: skip


def answers_of(lines: list[tuple[str, str, str, str]], source: str = "answers.csv") -> list[Answer]:
    return [Answer(f"{source}:{k + 2}", *line) for k, line in enumerate(lines)]


# identity as shown: p1 (A, A), p2 (B, tie), p3 (B, B), p4 (B, A); prompt: all tie
CONSTRUCTED = answers_of(
    [(p, who, ident, "tie") for p, idents in (("s-1", "AA"), ("s-2", "BT"), ("s-3", "BB"), ("s-4", "BA"))
     for who, ident in zip(("x", "y"), (i.replace("T", "tie") for i in idents), strict=True)]
)  # fmt: skip


def test_constructed_answers_give_the_hand_computed_results():
    tables = analyse(CONSTRUCTED, constructed_key())
    results = tables["results"].set_index("criterion")
    assert list(tables["results"].columns) == ["criterion", "a_wins", "tie", "b_wins", "n"]
    # identity for row a: p1 +1 +1, p2 (a is B) +1 0, p3 -1 -1, p4 (a is B) +1 -1 -> 4 wins, 1 tie, 3 losses
    assert results.loc["identity"].tolist() == [0.5, 0.125, 0.375, 8]
    assert results.loc["prompt"].tolist() == [0.0, 1.0, 0.0, 8]
    shares = tables["figure5"].set_index(["criterion", "outcome"])
    # Wilson on n = 4 pairs, share 0.5: centre 0.5, half = z sqrt(1/16 + z^2/64) / (1 + z^2/4) = 0.349961
    assert shares.loc[("identity", "a_wins"), ["ci_low", "ci_high"]].tolist() == pytest.approx(
        [0.150039, 0.849961], abs=1e-6
    )
    # share 0 on 4 pairs: [0, z^2 / (4 + z^2)] = [0, 0.489891]
    assert shares.loc[("prompt", "a_wins"), ["ci_low", "ci_high"]].tolist() == pytest.approx(
        [0.0, 0.489891], abs=1e-6
    )
    assert (
        shares.loc[("identity", "a_wins"), "paper"] == 0.54
        and shares.loc[("prompt", "b_wins"), "paper"] == 0.22
    )
    agreement = tables["agreement"].set_index("criterion")
    # answers per pair [A, B, tie]: [2,0,0], [0,1,1], [0,2,0], [1,1,0] -> P = (1 + 0 + 1 + 0) / 4 = 0.5;
    # pooled 3/8, 4/8, 1/8 -> Pe = 26/64; kappa = (0.5 - 26/64) / (1 - 26/64) = 3/19
    assert agreement.loc["identity", ["pairs", "answers", "raw_agreement"]].tolist() == [4, 8, 0.5]
    assert agreement.loc["identity", "fleiss_kappa"] == pytest.approx(3 / 19)
    assert agreement.loc["prompt", "raw_agreement"] == 1.0 and math.isnan(
        agreement.loc["prompt", "fleiss_kappa"]
    )
    found = tables["correlations"].set_index(["criterion", "metric"])
    # human preference for A per pair: 1, -0.5, -1, 0; dino A-B: 0.4, -0.1, -0.3, 0 (same order: rho 1);
    # Pearson: centred h (1.125, -0.375, -0.875, 0.125): 0.75 / sqrt(0.26 * 2.1875) = 0.994490
    assert found.loc[("identity", "dino"), ["pearson", "spearman"]].tolist() == pytest.approx(
        [0.994490, 1.0], abs=1e-6
    )
    # clip_i A-B 0.1, 0.1, -0.2, 0 -> ranks 3.5, 3.5, 1, 2 vs 4, 2, 1, 3: 3 / sqrt(4.5 * 5) = 0.632456
    assert found.loc[("identity", "clip_i"), "spearman"] == pytest.approx(0.632456, abs=1e-6)
    assert math.isnan(found.loc[("prompt", "dino"), "pearson"])  # every prompt answer a tie: no correlation
    assert (
        found.loc[("identity", "dino"), "paper_spearman"] == 0.65
        and found.loc[("prompt", "hpsv3"), "paper_pearson"] == 0.62
    )
    assert found.loc[("identity", "dino"), "label"] == "DINO (toy DINO v1)"


def test_statistics_match_references():
    from scipy import stats

    assert wilson_interval(0.6, 10) == pytest.approx((0.312673, 0.831819), abs=1e-6)  # the textbook 6 of 10
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=30), rng.integers(-1, 2, size=30)  # y: many ties, as preferences have
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0])
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])
    assert fleiss(np.array([[2, 0, 0], [0, 2, 0]])) == pytest.approx((1.0, 1.0))  # full agreement
    assert math.isnan(pearson([1, 2], [1, 2])) and math.isnan(wilson_interval(0.5, 0)[0])


def _reject(lines, match, **kwargs):
    with pytest.raises(AnswerError, match=match) as err:
        check_answers(answers_of(lines), constructed_key(), **kwargs)
    return err.value


def test_a_complete_answer_set_passes():
    check_answers(CONSTRUCTED, constructed_key())


def test_answers_for_another_export_are_rejected():
    lines = [("f00d-1", "x", "A", "A")]
    _reject(
        lines, r"answers.csv:2: pair 'f00d-1' is not in this export: these answers are for another export"
    )


def test_an_unknown_pair_id_is_rejected():
    _reject([(line.pair_id if k else "s-9", line.annotator, line.identity, line.prompt)
             for k, line in enumerate(CONSTRUCTED)], r"answers.csv:2: unknown pair id 's-9'")  # fmt: skip


def test_a_value_outside_a_b_tie_is_rejected():
    lines = [
        (a.pair_id, a.annotator, a.identity, "C" if k == 3 else a.prompt) for k, a in enumerate(CONSTRUCTED)
    ]
    _reject(lines, r"answers.csv:5: prompt answer 'C' is not one of A, B, tie")


def test_a_missing_value_is_rejected():
    lines = [
        (a.pair_id, a.annotator, "" if k == 0 else a.identity, a.prompt) for k, a in enumerate(CONSTRUCTED)
    ]
    _reject(lines, r"answers.csv:2: pair s-1 has no identity answer \(missing\)")


def test_a_duplicated_answer_is_rejected():
    lines = [(a.pair_id, a.annotator, a.identity, a.prompt) for a in CONSTRUCTED]
    _reject([*lines, lines[0]], r"answers.csv:10: duplicated: 'x' answered pair s-1 already at answers.csv:2")


def test_a_partial_answer_set_is_rejected_unless_allowed():
    lines = [
        (a.pair_id, a.annotator, a.identity, a.prompt)
        for a in CONSTRUCTED
        if a.pair_id != "s-4" or a.annotator == "x"
    ]
    error = _reject(lines, r"annotator 'y' answered 3 of 4 pairs; missing s-4 .*--allow-partial")
    assert len(error.problems) == 1 and str(pickle.loads(pickle.dumps(error))) == str(error)
    check_answers(answers_of(lines), constructed_key(), allow_partial=True)
    assert analyse(answers_of(lines), constructed_key())["results"]["n"].tolist() == [7, 7]


def test_answer_files_are_read_with_their_lines(tmp_path):
    good = tmp_path / "x.csv"
    good.write_text('pair_id,annotator,identity,prompt,seconds\ns-1,x,A,tie,3\n"s-2","x, y",B,B,4\n')
    answers = read_answers([good])
    assert answers[1] == Answer(f"{good}:3", "s-2", "x, y", "B", "B")
    bad = tmp_path / "bad.csv"
    bad.write_text("pair,who,identity,prompt\n")
    with pytest.raises(AnswerError, match=r"bad.csv:1: the header lacks \['pair_id', 'annotator'\]"):
        read_answers([good, bad])
