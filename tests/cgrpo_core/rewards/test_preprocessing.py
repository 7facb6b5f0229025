"""Image preparation: the DreamBench resize/crop, normalisation and subject masking, by hand."""

import numpy as np
import pytest
import torch
from PIL import Image

from cgrpo_core.rewards.preprocessing import (
    apply_mask,
    load_mask,
    mean_colour,
    resize_center_crop,
    to_tensor,
)


def _gradient(w, h):
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    return Image.fromarray(np.concatenate([x + 0 * y, 0 * x + y, (x + y) / 2], axis=2).astype(np.uint8))


def test_resize_center_crop_follows_torchvision_rules():
    image = _gradient(300, 200)
    out = resize_center_crop(image, 224, 224 / 256, "bilinear")
    # shorter side 200 -> 256, longer 300 -> int(256 * 300 / 200) = 384; crop left = round((384-224)/2) = 80,
    # top = round((256-224)/2) = 16
    expected = image.resize((384, 256), Image.Resampling.BILINEAR).crop((80, 16, 304, 240))
    assert out.size == (224, 224)
    assert np.array_equal(np.asarray(out), np.asarray(expected))


def test_to_tensor_normalises_per_channel():
    image = Image.fromarray(np.full((2, 3, 3), (51, 102, 255), dtype=np.uint8))
    out = to_tensor([image], mean=(0.2, 0.4, 0.5), std=(0.1, 0.2, 0.5))
    assert out.shape == (1, 3, 2, 3)
    # (51/255 - 0.2)/0.1 = 0; (102/255 - 0.4)/0.2 = 0; (1 - 0.5)/0.5 = 1
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([0.0, 0.0, 1.0]), atol=1e-6, rtol=0)


def test_mean_colour_normalises_to_zero():
    mean = (0.485, 0.456, 0.406)
    fill = mean_colour(mean)
    assert fill == (124, 116, 104)
    pixel = to_tensor([Image.new("RGB", (1, 1), fill)], mean, (0.229, 0.224, 0.225))
    assert pixel.abs().max() < 0.01


def test_apply_mask_fills_background_and_crops_a_square_with_margin():
    pixels = np.zeros((20, 30, 3), dtype=np.uint8)
    pixels[:] = (10, 20, 30)
    pixels[5:9, 10:20] = (200, 100, 50)  # a 4 x 10 subject
    mask = np.zeros((20, 30), dtype=bool)
    mask[5:9, 10:20] = True
    out = np.asarray(apply_mask(Image.fromarray(pixels), mask, (1, 2, 3), crop_to_mask=True, margin=0.1))
    # side = ceil(10 * 1.2) = 12; box centre (7, 15): top = (5 + 9 - 12)//2 = 1, left = (10 + 20 - 12)//2 = 9
    assert out.shape == (12, 12, 3)
    assert (out[4:8, 1:11] == (200, 100, 50)).all()  # rows 5-8 -> 4-7, cols 10-19 -> 1-10
    outside = np.ones((12, 12), dtype=bool)
    outside[4:8, 1:11] = False
    assert (out[outside] == (1, 2, 3)).all()


def test_apply_mask_without_crop_and_with_empty_mask():
    image = Image.fromarray(np.full((8, 8, 3), 90, dtype=np.uint8))
    mask = np.zeros((8, 8), dtype=bool)
    mask[0, 0] = True
    kept = np.asarray(apply_mask(image, mask, (0, 0, 0), crop_to_mask=False, margin=0.0))
    assert kept.shape == (8, 8, 3) and (kept[0, 0] == 90).all() and kept[1:].sum() == 0
    empty = np.asarray(apply_mask(image, np.zeros((8, 8), bool), (5, 6, 7), crop_to_mask=True, margin=0.0))
    assert (empty == (5, 6, 7)).all()
    with pytest.raises(ValueError, match="does not match"):
        apply_mask(image, np.zeros((4, 4), bool), (0, 0, 0), True, 0.0)


def test_load_mask_accepts_arrays_and_grey_images(tmp_path):
    assert load_mask(np.array([[0, 255], [128, 10]], dtype=np.uint8)).tolist() == [
        [False, True],
        [True, False],
    ]
    assert load_mask(np.array([[0.0, 1.0]])).tolist() == [[False, True]]
    Image.fromarray(np.array([[0, 200]], dtype=np.uint8)).save(tmp_path / "m.png")
    assert load_mask(tmp_path / "m.png").tolist() == [[False, True]]
    with pytest.raises(ValueError, match="2-D"):
        load_mask(np.zeros((2, 2, 3)))
