"""Human evaluation (paper section 6.2 and Fig. 5; App. A.3 and Fig. 8; Table 6): a blinded A/B study of
two rows' evaluated images, written as an offline annotation page, and the import of the answers.

Export. The two rows' score tables are paired image by image (:func:`pair_images`: same item, image
index and seed). :func:`draw_pairs` draws the study's pairs evenly, level by level: half object and
half live subjects, within each the prompt kinds it has, within each (type, kind) cell its subjects, and
within a subject its items (:func:`even_split` at every level), each item at most once until every item
is used (then a second image of each, drawn the same way); the draw is a function of the seed. Left and
right are balanced per model: within every (type, kind) cell, and overall, row a is shown as "A" in half
the pairs (off by at most one). :func:`build_export` makes the files: ``page.html``
(:data:`PAGE_TEMPLATE` with every image as a data URI), ``pairs.csv`` and ``images/<pair>-A.png``,
``images/<pair>-B.png``, ``references/rNN.png`` (pixels re-encoded, so no metadata is carried over).
Nothing in them names a model, a row, a key or a source file: a pair is ``<study>-<n>``, where
``study`` hashes the blinded content (prompts and images in display order). The key (apart from the
export) holds the truth of every pair (its source images, which side is row a, their metric scores),
the sha256 of every exported file and the export hash (:func:`export_digest` of those), so an import
can tell an edited export or key (:func:`check_key`, :func:`verify_export`).

Import. :func:`read_answers` and :func:`check_answers` accept only answers that fit the key; every
problem is reported with its file and line (:class:`AnswerError`). ``human_stats.py`` (:func:`analyse`)
computes, per criterion (``identity``, ``prompt``):

- win / tie / loss shares of row a over all answers, with 95% Wilson score intervals whose sample
  size is the number of pairs answered (:func:`wilson_interval`): the answers of several annotators
  to one pair are not independent, so the pair is the unit (with one annotator: the textbook interval);
- agreement between annotators on the pairs with two or more answers: the raw agreement (the share of
  annotator pairs who gave the same answer, averaged over pairs) and Fleiss' kappa over the three answers
  as shown (A, B, tie), with chance agreement from the pooled answer shares (:func:`fleiss`);
- for every metric, the Pearson and Spearman (ranks, ties averaged) correlation over the answered pairs
  between the metric difference ``score(A) - score(B)`` and the human preference for A (+1 A, 0 tie,
  -1 B, averaged over the pair's annotators). Table 6 correlates 0-5 ratings of single images, not
  pairwise preferences: its values are shown beside ours, not as the same quantity.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: figures are only ever written to files

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from cgrpo_core.evaluation.tables import PAPER_DIR  # noqa: E402
from cgrpo_core.store import atomic_write  # noqa: E402

__all__ = [
    "ANSWERS",
    "ANSWER_COLUMNS",
    "CRITERIA",
    "AnswerError",
    "Answer",
    "Export",
    "build_export",
    "check_answers",
    "check_key",
    "draw_pairs",
    "even_split",
    "export_digest",
    "pair_images",
    "read_answers",
    "verify_export",
    "write_export",
]

CRITERIA = ("identity", "prompt")
ANSWERS = ("A", "B", "tie")
ANSWER_COLUMNS = ("pair_id", "annotator", "identity", "prompt")
RESULT_COLUMNS = ["criterion", "a_wins", "tie", "b_wins", "n"]
OUTCOMES = {"a_wins": 1, "tie": 0, "b_wins": -1}  # outcome -> preference for row a
SHOWN = {"A": 1, "tie": 0, "B": -1}  # answer -> preference for the image shown as A
STRATA = ("subject_type", "kind", "subject")
PLAN = ("item", "image_index", "seed", "subject", "kind", "live", "prompt", "reference", "file_name")
KEY_FORMAT = "cgrpo-human-eval-key/1"
PAGE_TEMPLATE = Path(__file__).with_name("human_page.html")
PAPER_FIGURE5 = PAPER_DIR / "figure5_human_eval.csv"
PAPER_CRITERIA = {"identity": "id_preservation", "prompt": "prompt_following"}
TABLE6_NAMES = {
    "dino": "DINO",
    "clip_i": "CLIP-I",
    "clip_t": "CLIP-T",
    "hpsv3": "HPS-V3",
    "dino_seg": "DINO-Seg",
}
SHOWN_PROBLEMS = 12


# ---- drawing the pairs ---------------------------------------------------------------------------------


def pair_images(a: pd.DataFrame, b: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """The two rows' images side by side, one row per (item, image index): the plan's columns (row a's
    ``file_name`` as ``file_a``, row b's as ``file_b``) and each metric as ``<metric>_a``, ``<metric>_b``.
    Raises unless every image has its counterpart made from the same seed and prompt."""
    for name, frame in (("a", a), ("b", b)):
        missing = [c for c in (*PLAN, *metrics) if c not in frame.columns]
        if missing:
            raise ValueError(f"row {name}'s score table lacks the columns {missing}: pass scores.parquet")
    key = ["item", "image_index"]
    merged = a[[*PLAN, *metrics]].merge(
        b[[*key, "seed", "prompt", "file_name", *metrics]],
        on=key,
        how="outer",
        suffixes=("_a", "_b"),
        indicator=True,
    )
    alone, both = merged[merged["_merge"] != "both"], merged[merged["_merge"] == "both"]
    unpaired = both[(both["seed_a"] != both["seed_b"]) | (both["prompt_a"] != both["prompt_b"])]
    if len(alone) or len(unpaired):
        bad = (alone if len(alone) else unpaired).iloc[0]
        raise ValueError(
            f"the two rows' images are not paired ({len(alone)} without a counterpart, {len(unpaired)} from "
            f"another seed or prompt; e.g. item {bad['item']}, image {bad['image_index']}): evaluate both "
            "rows with the same evaluation settings"
        )
    merged = merged.drop(columns=["_merge", "seed_b", "prompt_b"])
    merged = merged.rename(columns={"seed_a": "seed", "prompt_a": "prompt", "file_name_a": "file_a"})
    return merged.rename(columns={"file_name_b": "file_b"}).sort_values(key, ignore_index=True)


def even_split(n: int, capacities: Sequence[int], rng: np.random.Generator) -> list[int]:
    """``n`` draws over cells as evenly as their capacities allow (water filling): the cells that are not
    full all get the same count, give or take one; ``rng`` picks which cells get the remainder."""
    if n > sum(capacities):
        raise ValueError(f"cannot draw {n} from cells holding {sum(capacities)}")
    counts = [0] * len(capacities)
    while n:
        open_cells = [i for i, cap in enumerate(capacities) if counts[i] < cap]
        share = n // len(open_cells)
        if share == 0:  # fewer draws left than open cells: one each to a random n of them
            for i in rng.permutation(open_cells)[:n]:
                counts[int(i)] += 1
            return counts
        for i in open_cells:
            add = min(share, capacities[i] - counts[i])
            counts[i] += add
            n -= add
    return counts


def _allocate(frame: pd.DataFrame, levels: Sequence[str], n: int, rng: np.random.Generator) -> list:
    """Index labels of ``n`` rows of ``frame``, split evenly over ``levels[0]``'s values, recursively."""
    if not levels:
        return list(frame.index[rng.permutation(len(frame))[:n]])
    groups = [group for _, group in frame.groupby(levels[0], sort=True)]
    counts = even_split(n, [len(g) for g in groups], rng)
    return [
        label for g, k in zip(groups, counts, strict=True) if k for label in _allocate(g, levels[1:], k, rng)
    ]


def _draw_rounds(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> list:
    """Index labels of ``n`` rows: round r offers one not yet drawn image of every item (a random one) and
    is drawn evenly over :data:`STRATA`; the next round only takes what the earlier ones could not."""
    shuffled = frame.iloc[rng.permutation(len(frame))]
    rounds = shuffled.groupby("item", sort=False).cumcount().to_numpy()
    chosen: list = []
    for r in range(int(rounds.max()) + 1):
        offered = shuffled[rounds == r]
        take = min(n - len(chosen), len(offered))
        chosen += _allocate(offered, STRATA, take, rng) if take else []
    return chosen


def _balanced_sides(chosen: pd.DataFrame, rng: np.random.Generator) -> pd.Series:
    """Row a's side per pair ("A": left): alternating within each (type, kind) cell in a random order,
    each cell starting on the side that brings the running total back to even."""
    sides = pd.Series("", index=chosen.index)
    lead = 0  # pairs with row a as A minus pairs with row b as A, so far
    for _, cell in chosen.groupby(["subject_type", "kind"], sort=True):
        first = "A" if lead < 0 or (lead == 0 and rng.random() < 0.5) else "B"
        for k, label in enumerate(rng.permutation(cell.index.to_numpy())):
            side = first if k % 2 == 0 else ("B" if first == "A" else "A")
            sides[label] = side
            lead += 1 if side == "A" else -1
    return sides


def draw_pairs(images: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` rows of :func:`pair_images` for the study (module docstring), in a random display order,
    with ``subject_type`` ("object"/"live"), ``a_side`` ("A": row a is shown as A) and ``position``."""
    if not 1 <= n <= len(images):
        raise ValueError(
            f"the number of pairs must be between 1 and {len(images)} (the paired images), got {n}"
        )
    rng = np.random.default_rng(seed)
    frame = images.reset_index(drop=True)
    frame = frame.assign(subject_type=np.where(frame["live"].astype(bool), "live", "object"))
    chosen = frame.loc[_draw_rounds(frame, n, rng)]
    chosen = chosen.assign(a_side=_balanced_sides(chosen, rng))
    shown = chosen.iloc[rng.permutation(len(chosen))].reset_index(drop=True)
    return shown.assign(position=np.arange(len(shown)))


# ---- the export --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """An export in memory: ``files`` (relative path -> bytes) and its ``key`` (JSON-able)."""

    files: dict[str, bytes]
    key: dict[str, Any]

    @property
    def export_hash(self) -> str:
        return self.key["export_hash"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def export_digest(files: Mapping[str, str]) -> str:
    """The export hash: sha256 over every file's relative path and sha256, sorted (16 hex characters)."""
    lines = "".join(f"{path}\t{files[path]}\n" for path in sorted(files))
    return _sha(lines.encode())[:16]


def _png(path: str | Path) -> bytes:
    """The image's pixels as a fresh PNG: nothing of the source file (text chunks, name) carries over."""
    try:
        with Image.open(path) as image:
            pixels = image.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"image {path} does not exist: evaluate the row again") from None
    buffer = io.BytesIO()
    pixels.save(buffer, format="PNG")
    return buffer.getvalue()


def _data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def render_page(study: str, pairs: Sequence[Mapping[str, Any]], references: Mapping[str, bytes]) -> str:
    """The page: :data:`PAGE_TEMPLATE` with the study (``pairs``: id, prompt, reference, A and B bytes)."""
    data = {
        "study": study,
        "pairs": [
            {
                "id": p["id"],
                "prompt": p["prompt"],
                "reference": p["reference"],
                "A": _data_uri(p["A"]),
                "B": _data_uri(p["B"]),
            }
            for p in pairs
        ],
        "references": {name: _data_uri(data) for name, data in references.items()},
    }
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=True).replace("</", "<\\/")
    return PAGE_TEMPLATE.read_text(encoding="utf-8").replace("__STUDY_DATA__", text)


def _pairs_csv(rows: Sequence[Mapping[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, ["pair_id", "prompt", "reference", "image_a", "image_b"], lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _key_pair(row: pd.Series, pair_id: str, metrics: Sequence[str]) -> dict[str, Any]:
    return {
        "pair_id": pair_id,
        "position": int(row["position"]),
        "item": int(row["item"]),
        "image_index": int(row["image_index"]),
        "seed": int(row["seed"]),
        "subject": str(row["subject"]),
        "live": bool(row["live"]),
        "kind": str(row["kind"]),
        "prompt": str(row["prompt"]),
        "a_side": str(row["a_side"]),
        "a_file": str(row["file_a"]),
        "b_file": str(row["file_b"]),
        "scores": {side: {m: float(row[f"{m}_{side}"]) for m in metrics} for side in ("a", "b")},
    }


def build_export(
    drawn: pd.DataFrame,
    folders: Mapping[str, str | Path],
    rows: Mapping[str, Mapping[str, Any]],
    metrics: Mapping[str, str],
    draw: Mapping[str, Any],
) -> Export:
    """The files and key of the study ``drawn`` (:func:`draw_pairs`); ``folders``: "a"/"b" -> the rows'
    evaluation folders (``file_a``/``file_b`` are relative to them); ``rows`` and ``draw`` go into the key
    as they are; ``metrics``: metric -> its model's label."""
    references: dict[str, str] = {}  # source path -> page name, in order of first appearance
    shown = []
    for row in drawn.itertuples(index=False):
        a, b = _png(Path(folders["a"]) / row.file_a), _png(Path(folders["b"]) / row.file_b)
        name = references.setdefault(str(row.reference), f"r{len(references) + 1:02d}")
        shown.append(
            {
                "prompt": str(row.prompt),
                "reference": name,
                "A": a if row.a_side == "A" else b,
                "B": b if row.a_side == "A" else a,
            }
        )
    reference_bytes = {name: _png(path) for path, name in references.items()}
    content = [
        [p["prompt"], _sha(reference_bytes[p["reference"]]), _sha(p["A"]), _sha(p["B"])] for p in shown
    ]
    study = _sha(json.dumps(content).encode())[:8]
    width = max(3, len(str(len(shown))))
    files: dict[str, bytes] = {}
    listing = []
    for position, pair in enumerate(shown):
        pair["id"] = f"{study}-{position + 1:0{width}d}"
        files[f"images/{pair['id']}-A.png"], files[f"images/{pair['id']}-B.png"] = pair["A"], pair["B"]
        listing.append(
            {
                "pair_id": pair["id"],
                "prompt": pair["prompt"],
                "reference": f"references/{pair['reference']}.png",
                "image_a": f"images/{pair['id']}-A.png",
                "image_b": f"images/{pair['id']}-B.png",
            }
        )
    files |= {f"references/{name}.png": data for name, data in reference_bytes.items()}
    files["pairs.csv"] = _pairs_csv(listing)
    files["page.html"] = render_page(study, shown, reference_bytes).encode()
    hashes = {path: _sha(data) for path, data in files.items()}
    key = {
        "format": KEY_FORMAT,
        "study": study,
        "export_hash": export_digest(hashes),
        "files": hashes,
        "rows": {side: dict(rows[side]) for side in ("a", "b")},
        "draw": dict(draw),
        "metrics": dict(metrics),
        "pairs": [
            _key_pair(row, shown[k]["id"], list(metrics)) for k, (_, row) in enumerate(drawn.iterrows())
        ],
    }
    return Export(files, key)


def _folder_files(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``folder`` (an interrupted atomic write's temporary
    ``.name.tmp`` files excepted)."""
    return {
        path.relative_to(folder).as_posix(): _sha(path.read_bytes())
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not (path.name.startswith(".") and path.name.endswith(".tmp"))
    }


def write_export(export: Export, folder: str | Path) -> Path:
    """Write the export's files into ``folder`` (each atomically). A folder that already holds this
    export, or part of it, is completed; one holding anything else is an error."""
    folder = Path(folder)
    present = _folder_files(folder) if folder.is_dir() else {}
    foreign = sorted(p for p, h in present.items() if export.key["files"].get(p) != h)
    if foreign:
        raise ValueError(
            f"{folder} already holds files that are not this export's ({', '.join(foreign[:3])}, ...): "
            "give an empty or new output folder"
        )
    for path, data in export.files.items():
        if path not in present:
            with atomic_write(folder / path, "wb") as handle:
                handle.write(data)
            (folder / path).chmod(0o644)  # to be handed out (atomic_write's temporary file is private)
    return folder


def check_key(key: Mapping[str, Any], source: str = "the key") -> None:
    """Raise unless ``key`` is a whole, unedited key: its format, and an export hash that is the hash of
    its file list."""
    if key.get("format") != KEY_FORMAT:
        raise ValueError(
            f"{source} is not a human-evaluation key (format {key.get('format')!r}, want {KEY_FORMAT!r})"
        )
    recorded, actual = key.get("export_hash"), export_digest(key.get("files", {}))
    if recorded != actual:
        raise ValueError(
            f"{source} was edited: its export_hash {recorded!r} is not the hash of its file list "
            f"({actual!r}); use the key the export wrote"
        )


def verify_export(key: Mapping[str, Any], folder: str | Path) -> None:
    """Raise unless ``folder`` holds exactly the files of the key's export, unchanged."""
    present, expected = _folder_files(Path(folder)), key["files"]
    changed = sorted(p for p in expected if p in present and present[p] != expected[p])
    missing = sorted(set(expected) - set(present))
    extra = sorted(set(present) - set(expected))
    if changed or missing or extra:
        raise ValueError(
            f"the export in {folder} is not the export {key['export_hash']} the key was made for (edited or "
            f"another export): changed {changed[:3]}, missing {missing[:3]}, extra {extra[:3]}"
        )


# ---- answers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One line of an answer file; ``source`` is ``file:line``."""

    source: str
    pair_id: str
    annotator: str
    identity: str
    prompt: str


class AnswerError(ValueError):
    """Answers that do not fit the key: every problem, each with its file and line."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        shown = "\n  ".join(self.problems[:SHOWN_PROBLEMS])
        more = len(self.problems) - SHOWN_PROBLEMS
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{len(self.problems)} problem(s) in the answers:\n  {shown}{tail}")

    def __reduce__(self):  # pickled by Prefect with its problems, not its message
        return type(self), (self.problems,)


def read_answers(paths: Iterable[str | Path]) -> list[Answer]:
    """Every line of the answer files (CSV with the columns of :data:`ANSWER_COLUMNS`, others ignored)."""
    answers, problems = [], []
    for path in paths:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in ANSWER_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                problems.append(f"{path}:1: the header lacks {missing}; want {','.join(ANSWER_COLUMNS)}")
                continue
            for line in reader:
                values = (str(line[c] or "").strip() for c in ANSWER_COLUMNS)
                answers.append(Answer(f"{path}:{reader.line_num}", *values))
    if problems:
        raise AnswerError(problems)
    return answers


def _line_problems(answer: Answer, ids: set[str], study: str, export: str) -> list[str]:
    where = answer.source
    if answer.pair_id not in ids:
        prefix = answer.pair_id.rpartition("-")[0]
        if prefix != study:
            return [
                f"{where}: pair {answer.pair_id!r} is not in this export: these answers are for another "
                f"export (study {prefix!r}; the key is for study {study!r}, export {export})"
            ]
        return [f"{where}: unknown pair id {answer.pair_id!r} (this export has {len(ids)} pairs)"]
    problems = [] if answer.annotator else [f"{where}: no annotator name"]
    for criterion in CRITERIA:
        value = getattr(answer, criterion)
        if not value:
            problems.append(f"{where}: pair {answer.pair_id} has no {criterion} answer (missing)")
        elif value not in ANSWERS:
            problems.append(f"{where}: {criterion} answer {value!r} is not one of A, B, tie")
    return problems


def check_answers(answers: Sequence[Answer], key: Mapping[str, Any], allow_partial: bool = False) -> None:
    """Raise :class:`AnswerError` listing every problem: a pair id of another export or unknown, a value
    outside A/B/tie, a missing value or annotator, an annotator answering a pair twice and (unless
    ``allow_partial``) an annotator who left pairs unanswered."""
    order = [p["pair_id"] for p in key["pairs"]]
    ids = set(order)
    problems: list[str] = [] if answers else ["the answer files hold no answers"]
    first: dict[tuple[str, str], str] = {}
    for answer in answers:
        problems += _line_problems(answer, ids, key["study"], key["export_hash"])
        seen = first.setdefault((answer.annotator, answer.pair_id), answer.source)
        if seen != answer.source:
            problems.append(
                f"{answer.source}: duplicated: {answer.annotator!r} answered pair {answer.pair_id} "
                f"already at {seen}"
            )
    if not allow_partial:
        for annotator in sorted({a.annotator for a in answers if a.annotator}):
            lacking = [p for p in order if (annotator, p) not in first]
            if lacking:
                listed = ", ".join(lacking[:5]) + (", ..." if len(lacking) > 5 else "")
                problems.append(
                    f"annotator {annotator!r} answered {len(order) - len(lacking)} of {len(order)} pairs; "
                    f"missing {listed} (finish them in the page and download again, or import with "
                    "--allow-partial)"
                )
    if problems:
        raise AnswerError(problems)
