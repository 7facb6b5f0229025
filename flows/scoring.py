"""Flow ``score-images``: a folder of images + a manifest of references/prompts -> a Parquet score table.

    python -m flows.scoring --images gen/ --manifest gen/manifest.csv --config scoring.json

The manifest format is described in cgrpo_core/rewards/folder.py; ``--config`` is a ScoringConfig as
JSON (metrics, model settings; default: DINO, CLIP-I, CLIP-T with the paper's model ids). The table
lands in the content-addressed store and is logged to MLflow experiment ``scoring``; the last line printed
is the folder that holds it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from prefect import flow

from cgrpo_core.rewards import ScoringConfig
from tasks.scoring import log_scores, score_images, scoring_key

DEFAULT_CONFIG = ScoringConfig()  # DINO, CLIP-I, CLIP-T with the paper's model ids


@flow(name="score-images", log_prints=True)
def score_images_flow(image_dir: str, manifest: str, config: ScoringConfig = DEFAULT_CONFIG) -> str:
    """Score every image of the manifest with ``config.metrics``; returns the Parquet table's path."""
    key = scoring_key(config, image_dir, manifest)
    table = score_images(config, image_dir, manifest, key)
    run_id = log_scores(config, key, table)
    print(f"scores {key}: {table}; MLflow run {run_id} (experiment 'scoring')")
    return table


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", required=True, help="folder of generated images")
    parser.add_argument("--manifest", required=True, help="manifest (.csv, .json, .jsonl or .parquet)")
    parser.add_argument("--config", help="ScoringConfig as a JSON file")
    args = parser.parse_args(argv)
    config = (
        ScoringConfig.model_validate(json.loads(Path(args.config).read_text()))
        if args.config
        else ScoringConfig()
    )
    table = score_images_flow(args.images, args.manifest, config)
    print(Path(table).parent)
    return table


if __name__ == "__main__":
    main()
