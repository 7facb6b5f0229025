"""End to end: ``python -m flows.human_eval export`` of two test-profile rows (table-2/sft vs the base model),
no exported file naming either model, the page answered in a real headless chromium (clicks and keys,
reload, a new tab, the CSV download), ``import`` reproducing exactly those answers, the MLflow runs of
``human-eval`` (the page's screenshot with the export), and bad answers exiting non-zero with the reason.

The browser is driven through the Chrome DevTools protocol (:class:`tests.browser.Chromium`: a websocket
client of the system's ``chromium``; Playwright's own browser download does not work here)."""

from __future__ import annotations

import csv
import json
import re
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from cgrpo_core.rows import get_row, row_config
from cgrpo_core.schema import config_hash
from flows.human_eval import main
from tests.browser import Chromium, Tab

pytestmark = pytest.mark.slow
ROWS = {"a": "table-2/sft", "b": "table-2/uno-base"}
PAIRS = 12


@pytest.fixture(scope="module")
def exported(prefect_harness):
    """The export of sft vs the base model (12 pairs) through the CLI, with its default key file."""
    folder = Path(
        main(["export", "--a", ROWS["a"], "--b", ROWS["b"], "--profile", "test", "--pairs", str(PAIRS)])
    )
    key_file = folder.parents[1] / "human_eval_keys" / f"{folder.name}.json"
    return folder, key_file, json.loads(key_file.read_text())


def test_the_export_is_a_page_and_pairs_csv_with_the_key_apart(exported, capsys):
    folder, key_file, key = exported
    assert folder.parent.name == "human_eval" and folder.name == key["export_hash"]
    assert not key_file.resolve().is_relative_to(folder)
    listing = pd.read_csv(folder / "pairs.csv")
    assert len(listing) == len(key["pairs"]) == PAIRS
    assert sum(p["a_side"] == "A" for p in key["pairs"]) == PAIRS // 2
    assert {p["kind"] for p in key["pairs"]} == {
        "recontextualization",
        "property",
    }  # the test profile's kinds
    assert {p["live"] for p in key["pairs"]} == {True, False}
    assert [key["rows"][s]["row"] for s in "ab"] == [ROWS["a"], ROWS["b"]]
    again = main(["export", "--a", ROWS["a"], "--b", ROWS["b"], "--profile", "test", "--pairs", str(PAIRS)])
    assert again == str(folder)  # the same export again: same hash, reused
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(folder)


def _secrets(key: dict) -> tuple[list[str], list[str]]:
    """(long, short) strings that would tell the models apart: row ids, model keys, eval and config hashes,
    folders, MLflow run ids, source image and reference names; the rows' labels (short: searched outside
    the embedded images only)."""
    long, short = [], []
    for side in key["rows"].values():
        folder = Path(side["eval_folder"])
        run = json.loads((folder / "run.json").read_text())
        long += [side["row"], str(folder), folder.name, *run.values()]
        long.append(config_hash(row_config(get_row(side["row"]), "test")))
        scores = pd.read_parquet(folder / "scores.parquet")
        long += list(scores["file_name"]) + [Path(f).name for f in scores["file_name"]]
        long += [Path(f).parent.as_posix() for f in set(scores["reference"])] + list(set(scores["reference"]))
        short += [side["label"], get_row(side["row"]).label.split(" ")[0]]
    return sorted(set(long)), sorted(set(short) | {"GRPO", "UNO", "SFT", "base model"})


def test_no_exported_file_tells_the_models_apart(exported):
    folder, _, key = exported
    long, short = _secrets(key)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert len(files) == 2 + 2 * PAIRS + len({p["subject"] for p in key["pairs"]})  # page, csv, images, refs
    for path in files:
        data = path.read_bytes()
        found = [s for s in long if s.encode() in data]
        if path.suffix != ".png":
            text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", data.decode())
            found += [s for s in short if s.lower() in text.lower()]
        assert found == [], f"{path.relative_to(folder)} contains {found}"


def _expected_answers(key: dict) -> dict[str, tuple[str, str]]:
    values = ("A", "B", "tie")
    return {p["pair_id"]: (values[k % 3], values[(k * 2 + 1) % 3]) for k, p in enumerate(key["pairs"])}


def _answer(tab: Tab, answer: tuple[str, str], by_keyboard: bool) -> None:
    digits = {"A": "1", "B": "2", "tie": "3"}
    if by_keyboard:  # the prompt question first (arrow down), then identity (the page moves back to it)
        for key in ("ArrowDown", digits[answer[1]], digits[answer[0]]):
            tab.press(key)
    else:
        for criterion, value in zip(("identity", "prompt"), answer, strict=True):
            tab.click(f'.question[data-criterion="{criterion}"] button[data-value="{value}"]')


def test_a_browser_answers_the_page_and_the_import_reproduces_the_answers(exported, tmp_path, mlflow_client):
    if shutil.which("chromium") is None:
        pytest.skip("no chromium: apt-get install -y chromium")
    folder, key_file, key = exported
    expected = _expected_answers(key)
    ids = list(expected)
    browser = Chromium(tmp_path, ready="typeof study === 'object'")
    try:
        tab = browser.open((folder / "page.html").as_uri())
        assert tab.text("count") == f"0 / {PAIRS} answered" and tab.text("position") == f"Pair 1 of {PAIRS}"
        tab.click("#annotator")
        tab.send("Input.insertText", {"text": "ann-1"})
        tab.press("Enter")
        for k in range(6):
            _answer(tab, expected[ids[k]], by_keyboard=k % 2 == 1)
            assert tab.text("position").startswith(f"Pair {k + 2} of")  # answered: on to the next pair
        tab.reload()  # kept in local storage
        assert tab.text("count") == f"6 / {PAIRS} answered" and tab.text("position") == f"Pair 7 of {PAIRS}"
        assert tab.js("document.getElementById('annotator').value") == "ann-1"
        tab.press("ArrowLeft")
        tab.click('.question[data-criterion="identity"] button[data-value="B"]')  # a changed answer stays put
        assert tab.text("position") == f"Pair 6 of {PAIRS} (answered)"
        expected[ids[5]] = ("B", expected[ids[5]][1])
        tab.close()
        tab = browser.open((folder / "page.html").as_uri())  # a closed tab resumes
        assert tab.text("count") == f"6 / {PAIRS} answered"
        tab.click("#unanswered")
        for k in range(6, PAIRS):
            assert tab.text("position") == f"Pair {k + 1} of {PAIRS}"
            _answer(tab, expected[ids[k]], by_keyboard=True)
        assert tab.text("count") == f"{PAIRS} / {PAIRS} answered"
        tab.click("#download")
        deadline = time.monotonic() + 30
        while not (downloaded := sorted(browser.downloads.glob("*.csv"))):
            assert time.monotonic() < deadline, "no download"
            time.sleep(0.05)
    finally:
        browser.close()
    (answers_file,) = downloaded
    assert answers_file.name == f"answers-ann-1-{key['study']}.csv"
    with answers_file.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["pair_id"]: (r["identity"], r["prompt"]) for r in rows} == expected
    assert {r["annotator"] for r in rows} == {"ann-1"}

    second = tmp_path / "ann-2.csv"  # a second annotator: every identity A, every prompt a tie
    second.write_text("pair_id,annotator,identity,prompt\n" + "".join(f"{p},ann-2,A,tie\n" for p in ids))
    results = Path(main(["import", "--key", str(key_file), str(answers_file), str(second)]))
    imported = pd.read_csv(results / "answers.csv", keep_default_na=False)
    mine = imported[imported["annotator"] == "ann-1"]
    assert (
        dict(zip(mine["pair_id"], zip(mine["identity"], mine["prompt"], strict=True), strict=True))
        == expected
    )
    table = pd.read_csv(results / "results.csv").set_index("criterion")
    sides = {p["pair_id"]: p["a_side"] for p in key["pairs"]}
    wins = sum(answer[0] == sides[p] for p, answer in expected.items()) + sum(
        s == "A" for s in sides.values()
    )
    assert table.loc["identity", "a_wins"] == pytest.approx(wins / (2 * PAIRS))
    assert table.loc["identity", "n"] == table.loc["prompt", "n"] == 2 * PAIRS
    assert pd.read_csv(results / "agreement.csv").set_index("criterion").loc["identity", "pairs"] == PAIRS
    assert set(pd.read_csv(results / "correlations.csv")["metric"]) == set(key["metrics"])
    assert (results / "figure5.png").is_file()

    experiment = mlflow_client.get_experiment_by_name("human-eval").experiment_id
    (export_run,) = mlflow_client.search_runs(
        [experiment], f"tags.stage = 'export' and tags.export_hash = '{folder.name}'"
    )
    assert export_run.info.status == "FINISHED" and export_run.data.tags["screenshot"] == "export/page.png"
    assert {a.path for a in mlflow_client.list_artifacts(export_run.info.run_id, "export")} == {
        "export/page.png",
        "export/pairs.csv",
    }
    (import_run,) = mlflow_client.search_runs([experiment], "tags.stage = 'import'")
    assert (
        import_run.data.tags["export_hash"] == key["export_hash"]
        and import_run.data.tags["export_checked"] == "true"
    )
    assert import_run.data.metrics["identity/a_wins"] == pytest.approx(table.loc["identity", "a_wins"])


def test_bad_answers_exit_non_zero_with_the_reason(exported, tmp_path):
    _, key_file, key = exported
    ids = [p["pair_id"] for p in key["pairs"]]
    bad = tmp_path / "bad.csv"
    lines = [f"{p},ann-3,A,B\n" for p in ids]
    lines[2] = f"{ids[2]},ann-3,A,maybe\n"
    bad.write_text("pair_id,annotator,identity,prompt\n" + "".join(lines) + lines[0])
    with pytest.raises(SystemExit) as exited:
        main(["import", "--key", str(key_file), str(bad)])
    message = str(exited.value.code)
    assert "bad.csv:4: prompt answer 'maybe' is not one of A, B, tie" in message
    assert f"bad.csv:{PAIRS + 2}: duplicated: 'ann-3' answered pair {ids[0]} already at" in message


def test_figure_5_and_table_6_join_the_report_once_answers_are_imported(exported, tmp_path, monkeypatch):
    from flows.reproduce import main as reproduce

    folder, key_file, key = exported
    answers = tmp_path / "ann-9.csv"  # every identity B, every prompt A
    answers.write_text(
        "pair_id,annotator,identity,prompt\n" + "".join(f"{p['pair_id']},ann-9,B,A\n" for p in key["pairs"])
    )
    results = Path(main(["import", "--key", str(key_file), str(answers)]))
    report = Path(reproduce(["figure-5", "--profile", "test"]))
    text = (report / "report.md").read_text()
    assert f"## Figure 5 and Table 6 (human evaluation, {results})" in text
    assert (report / "figures" / "figure-5.png").read_bytes() == (results / "figure5.png").read_bytes()
    metrics = pd.read_csv(results / "correlations.csv")["metric"]
    assert all(f"| {m} |" in text for m in metrics)

    monkeypatch.setenv("CGRPO_WORKSPACE", str(tmp_path / "empty"))  # no answers imported there
    with pytest.raises(SystemExit, match="no answers imported yet"):
        reproduce(["table-6", "--profile", "test"])
