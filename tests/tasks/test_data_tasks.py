"""Data tasks through ``.fn``: reuse by content, resumable scoring, bad input reported, MLflow logging."""

import json
import shutil
from pathlib import Path

import pytest

from cgrpo_core.config import experiment_config
from cgrpo_core.data.config import DreamBenchConfig
from cgrpo_core.data.prepare import read_table
from cgrpo_core.store import is_complete
from cgrpo_core.toy.world.config import ToyWorldConfig
from tasks.data import (
    check_toy_filter,
    filter_syncd_sets,
    log_data_run,
    make_toy_world,
    read_benchmark,
    read_syncd_sets,
    score_config,
    score_syncd_sets,
)
from tasks.zoo import build_reward_zoo
from tests.conftest import SHARED

TINY = ToyWorldConfig(syncd_sets=12, resolution=48, supersample=2, bench_images=1, seed=5)
CFG = experiment_config("test").data


@pytest.fixture(scope="module")
def world():
    return make_toy_world.fn(TINY)


def test_toy_world_is_built_once(world):
    assert (Path(world) / "ground_truth.json").is_file() and (Path(world) / "_COMPLETE").is_file()
    stamp = (Path(world) / "world.json").stat().st_mtime_ns
    assert make_toy_world.fn(TINY) == world and (Path(world) / "world.json").stat().st_mtime_ns == stamp


def test_read_score_filter_and_check(world):
    root = str(Path(world) / "syncd")
    sets_dir, key = read_syncd_sets.fn(root)
    assert len(read_table(Path(sets_dir) / "sets.parquet")) == 12 and read_syncd_sets.fn(root) == (
        sets_dir,
        key,
    )
    scores_dir, counts = score_syncd_sets.fn(CFG.score, root, sets_dir, key)
    assert counts == {"scored": 12, "reused": 0, "failed": 0}
    assert score_syncd_sets.fn(CFG.score, root, sets_dir, key)[1] == {"scored": 0, "reused": 12, "failed": 0}
    filtered, metrics = filter_syncd_sets.fn(CFG.filter, sets_dir, scores_dir)
    assert metrics["sets_read"] == 12 and metrics["sets_kept"] + metrics["sets_removed"] == 12
    train = json.loads((Path(filtered) / "train.json").read_text())
    assert len(train) == metrics["training_pairs"] == metrics["sets_kept"]
    check_file, shares = check_toy_filter.fn(filtered, world)
    assert Path(check_file).is_file() and 0 <= shares["toy_good_kept_share"] <= 1


def test_scores_of_another_scorer_are_filtered_anew(world):
    """Two scorers score the same sets (same score file names): the filter must not reuse the other's
    decisions (a toy zoo retrained with another config scores differently)."""
    root = str(Path(world) / "syncd")
    sets_dir, key = read_syncd_sets.fn(root)
    first, _ = score_syncd_sets.fn(CFG.score, root, sets_dir, key)
    other = CFG.score.model_copy(update={"mask_threshold": 0.2})  # another scorer: another scores folder
    second, _ = score_syncd_sets.fn(other, root, sets_dir, key)
    assert first != second
    assert sorted(p.name for p in Path(first).iterdir()) == sorted(p.name for p in Path(second).iterdir())
    assert (
        filter_syncd_sets.fn(CFG.filter, sets_dir, first)[0]
        != filter_syncd_sets.fn(CFG.filter, sets_dir, second)[0]
    )


def test_bad_input_is_reported_and_the_rest_finishes(world, tmp_path):
    root = tmp_path / "syncd"
    shutil.copytree(Path(world) / "syncd", root)
    (root / "00001" / "1.png").write_bytes(b"broken")  # a corrupt image: found by the scorer
    (root / "00002" / "metadata.json").write_text("[{")  # malformed metadata: found by the reader
    (root / "00003" / "masks" / "0.png").unlink()  # a missing mask: found by the reader
    sets_dir, key = read_syncd_sets.fn(str(root))
    scores_dir, counts = score_syncd_sets.fn(CFG.score, str(root), sets_dir, key)
    assert counts["failed"] == 1 and counts["scored"] == 9
    assert not is_complete(scores_dir)  # resumable: a fixed file is scored on the next run
    filtered, metrics = filter_syncd_sets.fn(CFG.filter, sets_dir, scores_dir)
    assert metrics["removed_unreadable"] == 3 and metrics["sets_read"] == 9
    issues = {i["set_id"]: i for i in json.loads((Path(filtered) / "report.json").read_text())["issues"]}
    assert issues["00001"]["path"].endswith("00001/1.png") and "unreadable image" in issues["00001"]["reason"]
    assert (
        issues["00002"]["path"].endswith("00002/metadata.json")
        and "malformed JSON" in issues["00002"]["reason"]
    )
    assert "mask masks/0.png" in issues["00003"]["reason"]
    # fixing the image and rerunning scores just that set and gives a new filter result
    shutil.copy(Path(world) / "syncd" / "00001" / "1.png", root / "00001" / "1.png")
    fixed_dir, counts = score_syncd_sets.fn(CFG.score, str(root), sets_dir, key)
    assert counts == {"scored": 1, "reused": 9, "failed": 0} and is_complete(fixed_dir)
    again, metrics = filter_syncd_sets.fn(CFG.filter, sets_dir, fixed_dir)
    assert again != filtered and metrics["removed_unreadable"] == 2


def test_benchmark_items_of_toybench_and_dreambench(world):
    toy = read_table(Path(read_benchmark.fn(DreamBenchConfig(), world)) / "items.parquet")
    assert len(toy) == 750 and toy["reference_image"].str.endswith(".png").all()
    root = SHARED / "dreambench" / "dataset"
    if not root.is_dir():
        pytest.skip(f"DreamBench not found at {root}")
    real = read_table(Path(read_benchmark.fn(DreamBenchConfig(root=str(root)))) / "items.parquet")
    assert len(real) == 750 and real.iloc[0]["reference_image"] == "backpack/02.jpg"


def test_log_data_run(mlflow_client, world):
    run_id = log_data_run.fn(
        "unit", CFG, "test", {"sets_kept": 3}, [str(Path(world) / "world.json")], {"stage": "unit"}
    )
    run = mlflow_client.get_run(run_id)
    assert (
        run.info.status == "FINISHED"
        and run.data.tags["profile"] == "test"
        and run.data.tags["stage"] == "unit"
    )
    assert run.data.metrics["sets_kept"] == 3.0 and run.data.params["filter.top_k"] == "10000"
    assert "syncd_root" in run.data.params  # a setting is logged, though not hashed
    assert [a.path for a in mlflow_client.list_artifacts(run_id, "tables")] == ["tables/world.json"]


# The toy profile's scorers: the toy reward zoo (test sizes), built once in the store and then reused.
ZOO_WORLD = ToyWorldConfig(syncd_sets=12, resolution=32, supersample=2, bench_images=2, seed=7)
TOY = experiment_config("test", changes={"data.score.identity_scorer": "embedding"})


def test_zoo_scorers_are_resolved_built_once_and_score(tmp_path):
    world = make_toy_world.fn(ZOO_WORLD)
    assert score_config.fn(CFG.score, None) is CFG.score  # configured: as it is
    zoo = build_reward_zoo.fn(TOY.toy.zoo.rewards, world)
    resolved = score_config.fn(TOY.data.score, zoo)
    assert (
        Path(resolved.identity_model.local_dir).parent == Path(zoo) and Path(zoo).parent.name == "reward_zoo"
    )
    assert resolved.identity_model.model_id.startswith(f"toy-zoo/{Path(zoo).name}/")
    stamp = (Path(zoo) / "reward_zoo.json").stat().st_mtime_ns
    assert build_reward_zoo.fn(TOY.toy.zoo.rewards, world) == zoo  # reused, not retrained
    assert (Path(zoo) / "reward_zoo.json").stat().st_mtime_ns == stamp
    root = str(Path(world) / "syncd")
    sets_dir, key = read_syncd_sets.fn(root)
    scores_dir, counts = score_syncd_sets.fn(resolved, root, sets_dir, key)
    assert counts == {"scored": 12, "reused": 0, "failed": 0}
    filtered, metrics = filter_syncd_sets.fn(TOY.data.filter, sets_dir, scores_dir)
    assert metrics["sets_read"] == 12 and Path(filtered, "train.json").is_file()
