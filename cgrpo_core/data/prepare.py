"""The SynCD preparation steps as whole-folder operations: tables on disk, input hashes, filter outputs.

Tables are Parquet (pyarrow), written atomically and read back as plain Python lists, so a table
survives a round trip unchanged. :func:`write_filter_outputs` writes everything one filter pass produces:

- ``decisions.parquet``: every readable set with its decision (reason, kept images, means, score, rank);
- ``train.json``: the training pairs in the authors' format (``train_1w_syncd_embedding.json``: id,
  category, category_description, ref_img, img, ref_prompt, text; paths relative to the SynCD root);
- ``train.parquet``: the same pairs plus set id, image indices, rank and score;
- ``report.json`` and ``histograms.png``: counts per reason and category, score summaries, figures.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cgrpo_core.data.config import FilterConfig
from cgrpo_core.data.filtering import TRAIN_FIELDS, filter_sets, training_pairs
from cgrpo_core.data.report import filter_report, plot_filter_histograms
from cgrpo_core.data.scoring import merge_scores
from cgrpo_core.data.syncd import Issue, metadata_files, set_table_schema
from cgrpo_core.plots import save_figure
from cgrpo_core.store import atomic_write, atomic_write_json, atomic_write_text

__all__ = [
    "FILTER_OUTPUTS",
    "read_issues",
    "read_table",
    "syncd_inputs_hash",
    "write_filter_outputs",
    "write_issues",
    "write_table",
]

FILTER_OUTPUTS = ("decisions.parquet", "train.json", "train.parquet", "report.json", "histograms.png")


def write_table(frame: pd.DataFrame, path: str | Path, schema: pa.Schema | None = None) -> Path:
    """Write ``frame`` as Parquet atomically (``schema`` fixes the column types, e.g. all-null columns)."""
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    with atomic_write(path, "wb") as handle:
        handle.write(buffer.getvalue())
    return Path(path)


def read_table(path: str | Path) -> pd.DataFrame:
    """A Parquet table as a DataFrame of plain Python values (lists stay lists, nulls are None)."""
    table = pq.read_table(path)
    return pd.DataFrame(table.to_pylist(), columns=table.column_names)


def write_issues(issues: Iterable[Issue], path: str | Path) -> Path:
    return atomic_write_json(path, [i.as_dict() for i in issues])


def read_issues(path: str | Path) -> list[Issue]:
    return [Issue(**entry) for entry in json.loads(Path(path).read_text(encoding="utf-8"))]


def syncd_inputs_hash(root: str | Path) -> str:
    """sha256 of every metadata file (relative path and bytes) under a SynCD root: the input hash of
    everything computed from it. Images are not hashed (too many); a changed image needs a new metadata."""
    root = Path(root).resolve()
    digest = hashlib.sha256()
    for path in metadata_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def _train_json(pairs: pd.DataFrame) -> str:
    entries = [{field: str(row[field]) for field in TRAIN_FIELDS} for row in pairs.to_dict("records")]
    return json.dumps(entries, indent=2) + "\n"


def write_filter_outputs(
    sets: pd.DataFrame,
    scores_dir: str | Path | None,
    issues: list[Issue],
    cfg: FilterConfig,
    out_dir: str | Path,
) -> dict:
    """Merge scores, filter, draw pairs, write :data:`FILTER_OUTPUTS` into ``out_dir``; returns the report."""
    out = Path(out_dir)
    scored = merge_scores(sets, scores_dir) if scores_dir is not None else sets
    decisions = filter_sets(scored, cfg)
    pairs = training_pairs(decisions, cfg)
    schema = set_table_schema()
    for name, kind in (
        ("reason", pa.string()),
        ("kept_images", pa.list_(pa.int64())),
        ("mean_dino", pa.float64()),
        ("mean_aesthetic", pa.float64()),
        ("score", pa.float64()),
        ("rank", pa.int64()),
        ("kept", pa.bool_()),
    ):
        schema = schema.append(pa.field(name, kind))
    write_table(decisions[schema.names], out / "decisions.parquet", schema)
    write_table(pairs, out / "train.parquet")
    atomic_write_text(out / "train.json", _train_json(pairs))
    report = filter_report(decisions, issues, cfg, len(pairs))
    atomic_write_json(out / "report.json", report)
    save_figure(
        plot_filter_histograms(decisions, cfg, f"SynCD filter: {report['kept']} sets kept"),
        out / "histograms.png",
    )
    return report
