"""DINO, DINO-Seg and CLIP-I: maxima, agreement with a direct computation, background invariance."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import BitImageProcessorPil, CLIPModel, Dinov2Model, Dinov2WithRegistersModel, ViTModel

from cgrpo_core.rewards.base import RewardBatch
from cgrpo_core.rewards.config import EmbeddingRewardConfig
from cgrpo_core.rewards.embeddings import ImageSimilarity, load_image_encoder, subject_embedder
from cgrpo_core.toy.tiny.rewards import build_tiny_dinov2
from tests.cgrpo_core.rewards.scenes import MaskSegmenter, random_scene, scene

IMAGENET = (np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32))


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [random_scene(rng)[0] for _ in range(n)]


@pytest.mark.parametrize("name", ["dino", "clip_i"])
def test_identical_image_gets_the_maximum(reward_set, name):
    images = _images(4)
    reward = reward_set.get(name)
    scores = reward(RewardBatch(images, references=[images[0]] * 4))
    assert scores[0].item() == pytest.approx(1.0, abs=1e-6)
    assert (scores[1:] < 1.0 - 1e-4).all()


def test_dinov2_cosine_equals_direct_computation(tiny_models):
    """Processor preprocessing + pooler_output (layer-normed CLS) + cosine, computed here independently."""
    cfg = tiny_models.dino_seg.model_copy(update={"segment": "none"})
    reward = ImageSimilarity("dino", load_image_encoder(cfg))
    images, refs = _images(3), _images(2, seed=1)
    scores = reward(RewardBatch(images, references=[refs] * 3))
    model, processor = (
        Dinov2Model.from_pretrained(cfg.local_dir),
        BitImageProcessorPil.from_pretrained(cfg.local_dir),
    )
    with torch.no_grad():
        # CLS token of the final (layer-normed) hidden states
        emb = model(**processor(images=images + refs, return_tensors="pt")).last_hidden_state[:, 0]
    cos = F.cosine_similarity(emb[:3, None], emb[None, 3:], dim=-1)  # (3 images, 2 references)
    torch.testing.assert_close(scores, cos.mean(1), atol=1e-5, rtol=0)


def test_dinov2_with_registers_reads_its_cls_token(tmp_path):
    folder = build_tiny_dinov2(tmp_path / "reg", registers=4)
    cfg = EmbeddingRewardConfig(family="dinov2_reg", model_id="tiny/dinov2-reg", local_dir=str(folder))
    images = _images(3)
    scores = ImageSimilarity("dino", load_image_encoder(cfg))(RewardBatch(images, references=[images[0]] * 3))
    model = Dinov2WithRegistersModel.from_pretrained(folder)
    with torch.no_grad():  # the CLS token of the layer-normed hidden states; 4 register tokens follow it
        hidden = model(
            **BitImageProcessorPil.from_pretrained(folder)(images=images, return_tensors="pt")
        ).last_hidden_state
    assert hidden.shape[1] == 1 + 4 + (32 // 8) ** 2
    torch.testing.assert_close(
        scores, F.cosine_similarity(hidden[:, 0], hidden[:1, 0], dim=-1), atol=1e-5, rtol=0
    )


def _dreambench_pixels(image, side, mean, std):
    """resize shorter side to round(side * 256/224) (bilinear), centre-crop side, normalise: by hand."""
    short = round(side / (224 / 256))
    w, h = image.size
    new = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    image = image.resize(new, Image.Resampling.BILINEAR)
    left, top = round((new[0] - side) / 2), round((new[1] - side) / 2)
    array = np.asarray(image.crop((left, top, left + side, top + side)), np.float32) / 255
    return torch.from_numpy((array - mean) / std).permute(2, 0, 1)


def test_dino_v1_dreambench_protocol_equals_direct_computation(tiny_models):
    cfg = tiny_models.dino
    assert cfg.family == "dino_v1" and cfg.image_prep == "resize_crop"
    wide = Image.fromarray(np.random.default_rng(3).integers(0, 255, (40, 70, 3), dtype=np.uint8))
    images, ref = [wide, *_images(2)], _images(1, seed=9)[0]
    scores = ImageSimilarity("dino", load_image_encoder(cfg))(RewardBatch(images, references=[ref] * 3))
    model = ViTModel.from_pretrained(cfg.local_dir, add_pooling_layer=False)
    pixels = torch.stack([_dreambench_pixels(im, 32, *IMAGENET) for im in [*images, ref]])
    with torch.no_grad():
        emb = model(pixel_values=pixels).last_hidden_state[:, 0]
    torch.testing.assert_close(scores, F.cosine_similarity(emb[:3], emb[3:], dim=-1), atol=1e-5, rtol=0)


def test_clip_i_equals_direct_computation_and_scale(tiny_models):
    cfg = tiny_models.clip_i
    images, refs = _images(2), _images(3, seed=4)
    scores = ImageSimilarity("clip_i", load_image_encoder(cfg))(
        RewardBatch(images, references=[refs, refs[:1]])
    )
    model = CLIPModel.from_pretrained(cfg.local_dir)
    clip_mean = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
    clip_std = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)
    pixels = torch.stack([_dreambench_pixels(im, 32, clip_mean, clip_std) for im in images + refs])
    with torch.no_grad():
        emb = model.get_image_features(pixel_values=pixels).pooler_output
    cos = F.cosine_similarity(emb[:2, None], emb[None, 2:], dim=-1)  # (2, 3)
    torch.testing.assert_close(scores, torch.stack([cos[0].mean(), cos[1, 0]]), atol=1e-5, rtol=0)
    scaled = ImageSimilarity("clip_i", load_image_encoder(cfg.model_copy(update={"scale": 100.0})))
    torch.testing.assert_close(scaled(RewardBatch(images, references=[refs, refs[:1]])), scores * 100)


def test_dino_seg_ignores_a_background_change_that_dino_does_not(tiny_models):
    reference, ref_mask = scene((128, 128, 128), box=(16, 16, 28))
    moved = scene((30, 160, 200), box=(16, 16, 28), stripes=(250, 250, 250))  # same subject, new background
    other = scene((128, 128, 128), box=(16, 16, 28), subject=((40, 40, 200), (10, 200, 10)))  # new subject
    batch = RewardBatch([moved[0], other[0]], references=[reference, reference])
    cfg = tiny_models.dino_seg
    dino = ImageSimilarity("dino", load_image_encoder(cfg.model_copy(update={"segment": "none"})))(batch)
    segmenter = MaskSegmenter([(reference, ref_mask), moved, other])
    dino_seg = ImageSimilarity("dino_seg", load_image_encoder(cfg), segmenter)(batch)
    assert dino_seg[0].item() == pytest.approx(1.0, abs=1e-6)  # backgrounds differ, subjects identical
    assert dino[0].item() < 1.0 - 1e-3  # whole-image DINO sees the background change
    assert dino_seg[1].item() < 1.0 - 1e-3  # a different subject is still penalised


def test_dino_seg_also_ignores_where_the_subject_is(tiny_models):
    reference, ref_mask = scene((128, 128, 128), box=(4, 6, 20))
    shifted = scene((90, 20, 20), box=(30, 28, 20))
    segmenter = MaskSegmenter([shifted])
    reward = ImageSimilarity("dino_seg", load_image_encoder(tiny_models.dino_seg), segmenter)
    # the reference's own mask is given (the dataset's), so only the generated image is segmented
    score = reward(RewardBatch([shifted[0]], references=[[reference]], reference_masks=[[ref_mask]]))
    assert score.item() == pytest.approx(1.0, abs=1e-6)
    assert segmenter.calls == 1


def test_released_mode_segments_only_the_reference(tiny_models):
    reference, ref_mask = scene((128, 128, 128), box=(16, 16, 28))
    cfg = tiny_models.dino_seg.model_copy(update={"segment": "reference", "scale": 100.0})
    segmenter = MaskSegmenter([(reference, ref_mask)])
    reward = ImageSimilarity("dino_seg", load_image_encoder(cfg), segmenter)
    masked_reference = reward._masked([reference], [ref_mask])[0]
    score = reward(RewardBatch([masked_reference], references=[reference]))
    assert score.item() == pytest.approx(100.0, abs=1e-4)  # the generated image is used as it is


def test_references_are_embedded_once_per_distinct_image(tiny_models):
    encoder = load_image_encoder(tiny_models.clip_i)
    seen = []
    original = encoder.embed
    encoder.embed = lambda images: (seen.append(len(images)), original(images))[1]
    images = _images(12)
    ImageSimilarity("clip_i", encoder)(RewardBatch(images, references=[[images[0], images[1]]] * 12))
    assert seen == [12, 2]


def test_missing_references_is_a_clear_error(reward_set):
    with pytest.raises(ValueError, match="'dino' needs references"):
        reward_set.get("dino")(RewardBatch(_images(1)))


def test_subject_embedder_has_the_syncd_scorer_signature(tiny_models):
    """(crops, masks) -> unit (N, D); with segmentation the background under the mask does not count."""
    plain, mask = scene((128, 128, 128), box=(16, 16, 28))
    striped, _ = scene((30, 160, 200), box=(16, 16, 28), stripes=(250, 250, 250))
    mask_image = Image.fromarray(mask.astype(np.uint8) * 255)
    seg = subject_embedder(tiny_models.dino_seg)([plain, striped], [mask_image, mask])
    assert seg.shape == (2, 32) and np.allclose(np.linalg.norm(seg, axis=1), 1.0, atol=1e-5)
    assert float(seg[0] @ seg[1]) == pytest.approx(1.0, abs=1e-6)
    raw = subject_embedder(tiny_models.dino_seg.model_copy(update={"segment": "none"}))(
        [plain, striped], [mask, mask]
    )
    assert float(raw[0] @ raw[1]) < 1.0 - 1e-3
