"""Scorer: SynCD's subject crop, the upper-triangular similarity matrix, batching, resume, bad files."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from cgrpo_core.data.scoring import merge_scores, pairwise_upper, score_file, score_sets, subject_crop
from cgrpo_core.data.syncd import read_syncd
from tests.cgrpo_core.data.helpers import write_set

RED, BLUE = (200, 30, 30), (30, 30, 200)


class MeanColour:
    """Stand-in embedder: the mean RGB of each crop; records the batch sizes it is called with."""

    def __init__(self):
        self.calls = []

    def __call__(self, crops, masks):
        self.calls.append(len(crops))
        return np.stack([np.asarray(c, dtype=float).reshape(-1, 3).mean(axis=0) for c in crops])


def brightness(images):
    """Stand-in aesthetic: mean grey level / 25.5 (0-10)."""
    return np.array([np.asarray(im.convert("L"), dtype=float).mean() / 25.5 for im in images])


def test_subject_crop_is_the_square_around_the_mask():
    image = Image.fromarray(np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3))
    mask = np.zeros((16, 16), np.uint8)
    mask[2:12, 4:10] = 255  # rows 2..11 (10 high), cols 4..9 (6 wide): square side 10 centred at (7, 7)
    crop, crop_mask = subject_crop(image, Image.fromarray(mask))
    assert crop.size == (10, 10) and np.array_equal(np.asarray(crop), np.asarray(image)[2:12, 2:12])
    assert np.asarray(crop_mask)[:, 2:8].all() and not np.asarray(crop_mask)[:, :2].any()
    edge = np.zeros((16, 16), np.uint8)
    edge[0:6, 0:2] = 255  # 6 x 2 at the corner: square side 6 centred at (1, 3) -> box x -2..4, y 0..6
    crop, _ = subject_crop(image, Image.fromarray(edge))
    assert crop.size == (6, 6) and not np.asarray(crop)[:, :2].any()  # outside the image: black
    assert np.array_equal(np.asarray(crop)[:, 2:], np.asarray(image)[0:6, 0:4])
    whole, full = subject_crop(image, Image.new("L", (16, 16), 0))
    assert whole.size == (16, 16) and np.asarray(full).min() == 255


def test_pairwise_upper_matches_hand_cosines():
    got = pairwise_upper(np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]]))
    r = 1 / math.sqrt(2)
    np.testing.assert_allclose(got, [[0, 0, r], [0, 0, r], [0, 0, 0]], atol=1e-12)
    with pytest.raises(ValueError, match="non-zero"):
        pairwise_upper(np.array([[1.0, 0.0], [0.0, 0.0]]))


def test_scores_batches_and_files(tmp_path):
    root, scores = tmp_path / "syncd", tmp_path / "scores"
    write_set(root, "a", colors=[RED, RED, BLUE])
    for name in ("b", "c", "d"):
        write_set(root, name)
    sets = read_syncd(root).sets
    embedder = MeanColour()
    run = score_sets(sets, root, scores, embedder, brightness, batch_size=5, progress=False)
    assert (run.scored, run.reused, run.failed) == (4, 0, [])
    assert embedder.calls == [6, 6]  # flushed once 5 images are pending: after sets a+b, then c+d
    data = json.loads(score_file(scores, "a").read_text())
    # cos(red, blue) = (200*30 + 30*30 + 30*200) / (200^2 + 30^2 + 30^2) = 12900 / 41800
    np.testing.assert_allclose(data["dino_scores"], [[0, 1, 12900 / 41800], [0, 0, 12900 / 41800], [0, 0, 0]])
    grey = {c: (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]) for c in (RED, BLUE)}  # PIL's L conversion
    np.testing.assert_allclose(
        list(data["aesthetics_scores"].values()),
        [grey[RED] / 25.5, grey[RED] / 25.5, grey[BLUE] / 25.5],
        atol=0.04,
    )
    merged = merge_scores(sets, scores)
    assert merged.iloc[0]["dino_scores"] == data["dino_scores"]
    assert merged.iloc[0]["aesthetics"] == [data["aesthetics_scores"][k] for k in ("0", "1", "2")]


def test_rerun_skips_scored_sets_and_resumes_the_rest(tmp_path):
    root, scores = tmp_path / "syncd", tmp_path / "scores"
    for name in ("a", "b", "c"):
        write_set(root, name)
    sets = read_syncd(root).sets
    score_sets(sets, root, scores, MeanColour(), brightness, progress=False)
    score_file(scores, "b").unlink()  # as if killed before b's batch was written
    embedder = MeanColour()
    run = score_sets(sets, root, scores, embedder, brightness, progress=False)
    assert (run.scored, run.reused) == (1, 2) and embedder.calls == [3]


def test_sets_with_scores_or_single_images_are_not_scored(tmp_path):
    root, scores = tmp_path / "syncd", tmp_path / "scores"
    write_set(root, "scored", n=2, dino_scores=[[0, 0.5], [0, 0]], aesthetics_scores={"0": 1.0, "1": 2.0})
    write_set(root, "single", n=1)
    run = score_sets(read_syncd(root).sets, root, scores, MeanColour(), brightness, progress=False)
    assert run.scored == 0 and list(scores.iterdir()) == []


def test_corrupt_or_missing_image_is_reported_and_the_rest_scored(tmp_path):
    root, scores = tmp_path / "syncd", tmp_path / "scores"
    for name in ("a", "b", "c"):
        write_set(root, name)
    sets = read_syncd(root).sets
    (root / "a" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "c" / "masks" / "0.png").unlink()  # vanished after the read
    run = score_sets(sets, root, scores, MeanColour(), brightness, progress=False)
    assert run.scored == 1 and score_file(scores, "b").is_file()
    failed = {i.set_id: i for i in run.failed}
    assert failed["a"].path.endswith("a/1.png") and failed["a"].reason.startswith("unreadable image")
    assert failed["c"].path.endswith("c/masks/0.png") and failed["c"].reason == "file missing"


def test_scorers_must_return_one_value_per_image(tmp_path):
    root = tmp_path / "syncd"
    write_set(root, "a")
    with pytest.raises(ValueError, match="one finite value per image: 3 images, 3 embeddings, 1 aesthetic"):
        score_sets(
            read_syncd(root).sets, root, tmp_path / "s", MeanColour(), lambda ims: [1.0], progress=False
        )


def test_merge_refuses_scores_of_other_files(tmp_path):
    root, scores = tmp_path / "syncd", tmp_path / "scores"
    write_set(root, "a", n=2)
    sets = read_syncd(root).sets
    score_sets(sets, root, scores, MeanColour(), brightness, progress=False)
    write_set(root, "a", n=3)
    with pytest.raises(ValueError, match="scores are for files"):
        merge_scores(read_syncd(root).sets, scores)
