"""Flows ``human-eval-export`` and ``human-eval-import``: the paper's pairwise human evaluation (Fig. 5,
App. A.3) of two table rows, as a blinded offline page for annotators and the import of their answers
(docs/human_eval.md).

    python -m flows.human_eval export --a ROW --b ROW [--pairs N] [--draw-seed N] [--profile toy|test|paper]
                                      [--preset ...] [--seed N] [--set dotted.key=value ...]
                                      [--out DIR] [--key FILE]
    python -m flows.human_eval import --key FILE ANSWERS.csv [ANSWERS.csv ...] [--out DIR] [--allow-partial]

    python -m flows.human_eval export --a table-2/customized-grpo --b table-2/uno-base   # 200 pairs
    python -m flows.human_eval import --key outputs/human_eval_keys/<hash>.json answers-*.csv

``export`` evaluates each row first where its evaluation is missing (as ``flows.evaluate`` does; the
rows' images are paired by the shared evaluation seed), draws the pairs (``--draw-seed``) and writes the
export folder (``page.html``: open it in any browser, offline; ``pairs.csv`` and the images for other
annotation tools) and, apart from it, the key that unblinds it. ``import`` checks the answer files
against the key and the export (a bad answer file exits non-zero, naming each offending line) and writes
``results.csv`` (row a's win / tie / loss shares), ``figure5.csv`` and ``figure5.png`` (with 95% CIs,
beside the paper's), ``agreement.csv`` and ``correlations.csv`` (each metric vs the human preferences,
beside Table 6). Both log to the MLflow experiment ``human-eval``; the last line printed is the folder.
"""

from __future__ import annotations

import argparse

from prefect import flow

from cgrpo_core.config import PRESETS, PROFILES, ExperimentConfig
from cgrpo_core.rows import get_row, row_config
from flows.cli import parse_changes
from flows.evaluate import row_results
from tasks.human_eval import export_study, import_answers, log_export


@flow(name="human-eval-export", log_prints=True)
def human_eval_export(
    rows: dict[str, str],
    configs: dict[str, ExperimentConfig],
    pairs: int = 200,
    seed: int = 0,
    out: str | None = None,
    key: str | None = None,
) -> str:
    """Evaluate rows "a" and "b" where needed, write their blinded study and log it; returns the export."""
    if rows["a"] == rows["b"]:
        raise ValueError(f"--a and --b are both {rows['a']}: compare two rows")
    folders = {side: row_results(rows[side], configs[side], run=True)[0] for side in ("a", "b")}
    folder, key_file = export_study(rows, folders, pairs, seed, out, key)
    log_export(folder, key_file)
    print(f"export: {folder}\nkey (keep it apart from the export): {key_file}")
    return folder


@flow(name="human-eval-import", log_prints=True)
def human_eval_import(
    key: str, answers: list[str], out: str | None = None, allow_partial: bool = False
) -> str:
    """Check the answers against the key and write Fig. 5, the agreement and the correlations."""
    folder = import_answers(key, answers, out, allow_partial)
    print(f"results: {folder}")
    return folder


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write a blinded A/B study of two rows")
    export.add_argument("--a", required=True, help="the first row (its wins are results.csv's a_wins)")
    export.add_argument("--b", required=True, help="the second row")
    export.add_argument(
        "--pairs", type=int, default=200, help="pairs to annotate (default 200, as the paper)"
    )
    export.add_argument("--draw-seed", type=int, default=0, help="seed of the pair draw and the sides")
    export.add_argument("--profile", default="toy", choices=list(PROFILES))
    export.add_argument("--preset", default="paper_default", choices=sorted(PRESETS))
    export.add_argument("--seed", type=int, help="the rows' training seed (default 0)")
    export.add_argument("--set", dest="changes", action="append", default=[], metavar="KEY=VALUE")
    export.add_argument("--out", help="export folder (default outputs/human_eval/<export hash>/)")
    export.add_argument("--key", help="key file (default outputs/human_eval_keys/<export hash>.json)")
    imported = commands.add_parser("import", help="import answer files of an export")
    imported.add_argument("--key", required=True, help="the key the export wrote")
    imported.add_argument("answers", nargs="+", help="answer CSVs (pair_id, annotator, identity, prompt)")
    imported.add_argument(
        "--out", help="results folder (default outputs/human_eval_results/<hash>/<answers>/)"
    )
    imported.add_argument("--allow-partial", action="store_true", help="accept annotators who skipped pairs")
    return parser


def main(argv: list[str] | None = None) -> str:
    args = _parser().parse_args(argv)
    if args.command == "import":
        try:
            folder = human_eval_import(args.key, args.answers, args.out, args.allow_partial)
        except (ValueError, FileNotFoundError, KeyError) as err:  # bad answers, key or export, named
            raise SystemExit(f"cannot import the answers: {err}") from None
    else:
        changes = ({"seed": args.seed} if args.seed is not None else {}) | parse_changes(args.changes)
        rows = {"a": args.a, "b": args.b}
        try:
            configs = {s: row_config(get_row(r), args.profile, args.preset, changes) for s, r in rows.items()}
            folder = human_eval_export(rows, configs, args.pairs, args.draw_seed, args.out, args.key)
        except (KeyError, ValueError, FileNotFoundError) as err:
            raise SystemExit(f"cannot export the study: {err}") from None
    print(folder)
    return folder


if __name__ == "__main__":
    main()
