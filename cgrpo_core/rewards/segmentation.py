"""Subject segmentation for DINO-Seg: images + subject class names -> boolean masks.

The paper (appendix A.1) segments the subject with "an object detection and segmentation approach"
without naming the models. Ours, both through transformers classes and configurable:

- ``detector_sam`` (paper profile): an open-vocabulary detector (OWLv2 by default, any
  ``AutoModelForZeroShotObjectDetection`` whose processor has ``post_process_grounded_object_detection``)
  finds the highest-scoring box for ``query_template`` (e.g. "a photo of a dog"); SAM (``SamModel``)
  turns that box into a mask, keeping the one of its three proposals with the highest predicted IoU. No
  box above ``box_threshold`` gives an empty mask (DINO-Seg then scores a blank image; see
  preprocessing.py).
- ``segformer`` (toy profile): a small ``SegformerForSemanticSegmentation`` with two classes (background,
  subject), trained on the toy world's own masks (cgrpo_core/toy/zoo/rewards/segmenter_training.py);
  class names are not needed.

Reference images with a known mask (the dataset's own) skip the segmenter (``RewardBatch.reference_masks``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import (
    AutoModelForZeroShotObjectDetection,
    AutoProcessor,
    SamModel,
    SamProcessor,
    SegformerForSemanticSegmentation,
    SegformerImageProcessorPil,
)

from cgrpo_core.rewards.base import checkpoint_dir, loading
from cgrpo_core.rewards.config import SegmenterConfig

__all__ = [
    "SEGMENTERS",
    "DetectorSamSegmenter",
    "Segmenter",
    "SegformerSegmenter",
    "load_segmenter",
]


class Segmenter(Protocol):
    """``segmenter(images, subjects) -> [bool [H_i, W_i]]``: one subject mask per image, at its size;
    ``needs_subjects`` says whether it reads the subject class names."""

    needs_subjects: bool

    def __call__(self, images: Sequence[Image.Image], subjects: Sequence[str] | None) -> list[np.ndarray]: ...


class SegformerSegmenter:
    """Per-pixel argmax of a two-class Segformer, upsampled (bilinear logits) to each image's size."""

    needs_subjects = False

    def __init__(self, model, processor, subject_label: int, batch_size: int, device: str):
        if subject_label >= model.config.num_labels:
            raise ValueError(
                f"subject_label {subject_label} >= the model's {model.config.num_labels} classes"
            )
        self.model, self.processor = model.to(device).eval(), processor
        self.subject_label, self.batch_size, self.device = subject_label, batch_size, device

    @torch.no_grad()
    def __call__(
        self, images: Sequence[Image.Image], subjects: Sequence[str] | None = None
    ) -> list[np.ndarray]:
        masks = []
        for start in range(0, len(images), self.batch_size):
            chunk = list(images[start : start + self.batch_size])
            pixels = self.processor(images=chunk, return_tensors="pt")["pixel_values"].to(self.device)
            logits = self.model(pixel_values=pixels).logits.float()  # (B, L, h, w)
            for image, logit in zip(chunk, logits, strict=True):
                up = F.interpolate(
                    logit[None], size=(image.height, image.width), mode="bilinear", align_corners=False
                )
                masks.append((up[0].argmax(0) == self.subject_label).cpu().numpy())
        return masks


class DetectorSamSegmenter:
    """Open-vocabulary box (best score per image) -> SAM mask (best predicted IoU of three)."""

    needs_subjects = True

    def __init__(self, detector, detector_processor, sam, sam_processor, cfg: SegmenterConfig, device: str):
        self.detector, self.detector_processor = detector.to(device).eval(), detector_processor
        self.sam, self.sam_processor = sam.to(device).eval(), sam_processor
        self.cfg, self.device = cfg, device

    @torch.no_grad()
    def boxes(self, images: Sequence[Image.Image], subjects: Sequence[str]) -> list[list[float] | None]:
        """The highest-scoring box [x0, y0, x1, y1] (pixels) per image, or None below the threshold."""
        found: list[list[float] | None] = []
        for start in range(0, len(images), self.cfg.batch_size):
            chunk, names = (
                list(images[start : start + self.cfg.batch_size]),
                subjects[start : start + self.cfg.batch_size],
            )
            queries = [[self.cfg.query_template.format(subject=name)] for name in names]
            inputs = self.detector_processor(text=queries, images=chunk, return_tensors="pt")
            outputs = self.detector(**inputs.to(self.device))
            results = self.detector_processor.post_process_grounded_object_detection(
                outputs,
                threshold=self.cfg.box_threshold,
                target_sizes=[(im.height, im.width) for im in chunk],
            )
            for image, result in zip(chunk, results, strict=True):
                if len(result["scores"]) == 0:
                    found.append(None)
                    continue
                x0, y0, x1, y1 = result["boxes"][int(result["scores"].argmax())].tolist()
                # OWLv2 boxes may reach into its square padding: clip into the image
                x0, x1 = (min(max(v, 0.0), image.width) for v in (x0, x1))
                y0, y1 = (min(max(v, 0.0), image.height) for v in (y0, y1))
                found.append([x0, y0, x1, y1])
        return found

    @torch.no_grad()
    def __call__(self, images: Sequence[Image.Image], subjects: Sequence[str] | None) -> list[np.ndarray]:
        if subjects is None:
            raise ValueError(
                "the detector_sam segmenter needs the subject class name of every image (subjects=...)"
            )
        boxes = self.boxes(images, subjects)
        masks = [np.zeros((im.height, im.width), dtype=bool) for im in images]
        todo = [i for i, box in enumerate(boxes) if box is not None]
        for start in range(0, len(todo), self.cfg.batch_size):
            idx = todo[start : start + self.cfg.batch_size]
            inputs = self.sam_processor(
                images=[images[i] for i in idx], input_boxes=[[boxes[i]] for i in idx], return_tensors="pt"
            )
            outputs = self.sam(**inputs.to(self.device), multimask_output=True)
            full = self.sam_processor.post_process_masks(
                outputs.pred_masks.cpu(), inputs["original_sizes"].cpu(), inputs["reshaped_input_sizes"].cpu()
            )  # per image: (1 box, 3 proposals, H, W) booleans
            for i, proposals, iou in zip(idx, full, outputs.iou_scores.cpu(), strict=True):
                masks[i] = proposals[0, int(iou[0].argmax())].numpy().astype(bool)
        return masks


def load_segformer(cfg: SegmenterConfig, device: str) -> SegformerSegmenter:
    """Load the toy profile's Segformer subject segmenter."""
    path = checkpoint_dir("Segformer segmenter", cfg.segformer_id, cfg.segformer_dir)
    model = loading(
        "Segformer segmenter",
        cfg.segformer_id,
        lambda: SegformerForSemanticSegmentation.from_pretrained(path),
    )
    processor = loading(
        "Segformer processor", cfg.segformer_id, lambda: SegformerImageProcessorPil.from_pretrained(path)
    )
    return SegformerSegmenter(model, processor, cfg.subject_label, cfg.batch_size, device)


def load_detector_sam(cfg: SegmenterConfig, device: str) -> DetectorSamSegmenter:
    """Load the paper profile's detector + SAM pair."""
    det_path = checkpoint_dir("subject detector", cfg.detector_id, cfg.detector_dir)
    sam_path = checkpoint_dir("SAM", cfg.sam_id, cfg.sam_dir)
    detector = loading(
        "subject detector",
        cfg.detector_id,
        lambda: AutoModelForZeroShotObjectDetection.from_pretrained(det_path),
    )
    det_processor = loading(
        "subject detector processor", cfg.detector_id, lambda: AutoProcessor.from_pretrained(det_path)
    )
    sam = loading("SAM", cfg.sam_id, lambda: SamModel.from_pretrained(sam_path))
    sam_processor = loading("SAM processor", cfg.sam_id, lambda: SamProcessor.from_pretrained(sam_path))
    return DetectorSamSegmenter(detector, det_processor, sam, sam_processor, cfg, device)


SEGMENTERS: dict[str, Callable[[SegmenterConfig, str], Segmenter]] = {
    "segformer": load_segformer,
    "detector_sam": load_detector_sam,
}


def load_segmenter(cfg: SegmenterConfig, device: str = "cpu") -> Segmenter:
    """The segmenter named by ``cfg.kind``."""
    if cfg.kind not in SEGMENTERS:
        raise ValueError(f"unknown segmenter {cfg.kind!r}; choose one of {sorted(SEGMENTERS)}")
    return SEGMENTERS[cfg.kind](cfg, device)
