"""Reference preprocessing (mode/size conversion or clear rejection) and image output."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from cgrpo_core.policy import decode_latents, encode_condition, reference_tensor, save_png, to_pil, to_uint8
from cgrpo_core.policy.images import to_rgb
from tests.cgrpo_core.policy.helpers import solid


def test_rgba_is_composited_on_white():
    image = Image.new("RGBA", (2, 1), (255, 0, 0, 255))
    image.putpixel((1, 0), (0, 0, 255, 0))  # fully transparent blue -> white
    assert list(to_rgb(image).getdata()) == [(255, 0, 0), (255, 255, 255)]


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "1", "LA", "YCbCr"])
def test_eight_bit_modes_are_converted(mode):
    image = Image.new("RGB", (4, 3), (30, 60, 90)).convert(mode)
    out = to_rgb(image)
    assert out.mode == "RGB" and out.size == (4, 3)


def test_grey_array_becomes_grey_rgb():
    out = to_rgb(np.full((3, 5), 77, dtype=np.uint8))
    assert out.size == (5, 3) and set(out.getdata()) == {(77, 77, 77)}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (Image.new("I;16", (4, 4)), "16/32-bit"),
        (Image.new("F", (4, 4)), "16/32-bit"),
        (np.zeros((4, 4, 3), dtype=np.float32), "uint8"),
        (np.zeros((4, 4, 2), dtype=np.uint8), r"\(H, W, 3\)"),
        (torch.zeros(3, 4, 4), "PIL image"),
        (Image.new("RGB", (0, 4)), "empty"),
    ],
)
def test_unusable_references_are_rejected_clearly(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        to_rgb(bad)


def test_reference_is_resized_and_centre_cropped_like_uno():
    # 80 wide x 50 high, long side -> 32: 32 x 20, cropped to multiples of 8: 32 x 16 (2 px off top, bottom).
    out = reference_tensor(solid((255, 0, 0), (80, 50)), long_side=32, multiple=8)
    assert out.shape == (1, 3, 16, 32)
    # 255 -> 1, 0 -> -1 exactly.
    assert torch.equal(out[0, 0], torch.ones(16, 32)) and torch.equal(out[0, 1], -torch.ones(16, 32))
    small = reference_tensor(solid((0, 0, 0), (10, 10)), long_side=32, multiple=8)  # upscaled
    assert small.shape == (1, 3, 32, 32)


def test_too_elongated_reference_is_rejected():
    with pytest.raises(ValueError, match="too elongated"):
        reference_tensor(solid((0, 0, 0), (400, 10)), long_side=32, multiple=8)


def test_reference_from_file_and_wrong_mode_through_the_policy(policy, settings, tmp_path):
    path = tmp_path / "ref.png"
    solid((10, 20, 30), (40, 40)).convert("L").save(path)
    from_file = encode_condition(policy, "a dog", path, settings.resolution)
    from_pil = encode_condition(policy, "a dog", Image.open(path).convert("RGB"), settings.resolution)
    assert torch.equal(from_file.ref_tokens, from_pil.ref_tokens)
    with pytest.raises(ValueError, match="16/32-bit"):
        encode_condition(policy, "a dog", Image.new("I;16", (32, 32)), settings.resolution)


def test_to_uint8_rounds_the_range():
    images = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    # (x + 1) * 127.5 = 0, 127.5 -> 128 (round half to even), 255, 382.5 -> clamped 255
    assert to_uint8(images)[0, 0, :, 0].tolist() == [0, 128, 255, 255]
    assert to_uint8(images).shape == (1, 1, 4, 3)


def test_decode_and_save_png(policy, settings, tmp_path):
    latents = torch.randn(2, 16, 64, generator=torch.Generator().manual_seed(0))
    images = decode_latents(policy, latents, settings.resolution)
    assert images.shape == (2, 3, 32, 32) and images.min() >= -1 and images.max() <= 1
    # Chunked decoding agrees up to float32 rounding (batched convolutions sum in another order).
    assert_close(decode_latents(policy, latents, settings.resolution, batch_size=1), images)
    pil = to_pil(to_uint8(images))
    path = save_png(pil[1], tmp_path / "out" / "b.png")
    assert np.array_equal(np.asarray(Image.open(path)), to_uint8(images)[1].numpy())
    save_png(to_uint8(images)[0], tmp_path / "a.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), np.asarray(to_pil(images)[0]))
