"""What the toy HPSv3's vision tower can learn when told directly: a diagnosis of the prompt reward's misses.

The toy HPSv3 misses its acceptance bars on accessorisation and on clean-vs-degraded (docs/zoo.md). This
script asks whether its vision tower can see those things at all. It trains the tower alone, built as the
reward zoo builds it (``build_hpsv3`` with ``ZooRewardsConfig().hpsv3`` and the ``--set`` overrides), with a
linear head on each image's mean merged vision token (what the language model reads of an image), on
direct labels rather than preferences:

- ``degraded``: clean render vs a degraded copy (``degrade_view``: blur, blocking or washed-out contrast,
  plus noise), reported per degradation kind;
- ``scene`` / ``accessory`` / ``property``: what the render's DreamBench template asks for (its background
  painter, worn accessory, property change; "none" where it asks for none). For ``accessory`` and
  ``property`` the accuracy is also reported on the renders that have one (the rest are "none").

Training images: the DreamBench-prompt renders the toy HPSv3 trains on (``training_renders``: the training
world's subjects, and the corpus world's with ``--set render_corpus=true``; ToyBench held out).
Held-out images: ToyBench's subjects, each under all 25 of its templates (the acceptance's renders). Beside
the tower: one hand-made feature, the mean absolute horizontal difference of the reward's own pixel values,
as a floor for "is the degradation there in the input at all".

With ``--model DIR`` it probes a trained toy HPSv3's tower instead: the tower stays as trained and only the
linear head learns (a linear probe of what the trained reward's language model can read of an image).

Run: .venv/bin/python benchmarks/probe_hpsv3_vision.py [--workspace DIR] [--target degraded] [--steps 400]
     [--lr 2e-3] [--model DIR] [--set FIELD=VALUE ...]

The workspace is benchmarks/bench_toy_hpsv3.py's (its default toy world and corpus world, reused; built
here when missing). Each run appends its curve to ``vision_probe_runs.jsonl`` in the workspace.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from cgrpo_core.rewards.hpsv3 import HPSv3, load_hpsv3_model, resize_to_pixels  # noqa: E402
from cgrpo_core.toy.world.config import ToyWorldConfig  # noqa: E402
from cgrpo_core.toy.world.generate import generate_toy_world  # noqa: E402
from cgrpo_core.toy.world.prompts import dreambench_templates  # noqa: E402
from cgrpo_core.toy.zoo.rewards.config import HPSv3TrainConfig, ZooRewardsConfig, hpsv3_config  # noqa: E402
from cgrpo_core.toy.zoo.rewards.data import degrade_view, syncd_views, world_corpus  # noqa: E402
from cgrpo_core.toy.zoo.rewards.hpsv3_training import (  # noqa: E402
    ATTRIBUTES,
    build_hpsv3,
    render_attributes,
    training_renders,
)
from cgrpo_core.toy.zoo.rewards.prompt_renders import (  # noqa: E402
    PromptRenders,
    render_prompts,
    subject_templates,
    toybench_subjects,
    world_render_size,
)

# label names per target (the toy HPSv3's vision-phase labels): index 0 is the plain background / none
LABELS = dict(zip(("scene", "accessory", "property"), ATTRIBUTES, strict=True))


def template_labels(templates: list[str], target: str) -> np.ndarray:
    """The label index of each template for ``target`` (scene, accessory or property)."""
    return render_attributes(templates)[:, list(LABELS).index(target)]


class Tower:
    """The vision tower of the toy HPSv3 in ``folder`` with a linear head on the mean merged token; a
    ``frozen`` tower is left as it is (a linear probe), else it trains with the head."""

    def __init__(self, cfg: HPSv3TrainConfig, folder: Path, classes: int, frozen: bool):
        reward_cfg = hpsv3_config(folder, cfg.image_pixels)
        model, processor = load_hpsv3_model(reward_cfg)
        self.visual, self.processor, self.cfg = model.backbone.visual, processor, cfg
        self.factor = HPSv3(model, processor, reward_cfg, "cpu").factor
        self.frozen = frozen
        self.visual.requires_grad_(not frozen)
        self.head = torch.nn.Linear(cfg.hidden, classes)
        self.train(True)

    def train(self, mode: bool) -> None:
        self.visual.train(mode and not self.frozen)

    def pixel_values(self, images: list[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
        resized = [resize_to_pixels(image, self.cfg.image_pixels, self.factor) for image in images]
        out = self.processor.image_processor(images=resized, return_tensors="pt")
        return out["pixel_values"], out["image_grid_thw"]

    def logits(self, images: list[Image.Image]) -> torch.Tensor:
        pixels, grid = self.pixel_values(images)
        merged = self.visual(pixels, grid_thw=grid).pooler_output
        return self.head(merged.reshape(len(images), -1, merged.shape[-1]).mean(1))

    def parameters(self) -> list[torch.nn.Parameter]:
        return [*(() if self.frozen else self.visual.parameters()), *self.head.parameters()]


def _toybench_renders(world: Path) -> PromptRenders:
    table = dreambench_templates()
    jobs = [(name, s, subject_templates(s, table)) for name, s in toybench_subjects(world)]
    return render_prompts(jobs, *world_render_size(world), seed=(0, 43))


def _degraded_set(
    renders: PromptRenders, rng: np.random.Generator, cfg
) -> tuple[list, np.ndarray, list[str]]:
    """Each render clean (label 0) and a degraded copy (label 1, with its kind)."""
    images, labels, kinds = [], [], []
    for image in renders.images:
        worse, kind = degrade_view(image, rng, cfg)
        images += [Image.fromarray(image), Image.fromarray(worse)]
        labels += [0, 1]
        kinds += ["clean", kind]
    return images, np.asarray(labels), kinds


def _accuracies(tower: Tower, images: list, labels: np.ndarray, groups: list[str]) -> dict[str, float]:
    with torch.no_grad():
        predicted = np.concatenate(
            [tower.logits(images[k : k + 128]).argmax(-1).numpy() for k in range(0, len(images), 128)]
        )
    right = predicted == labels
    out = {"all": float(right.mean())}
    for group in sorted(set(groups)):
        mask = np.asarray(groups) == group
        out[group] = float(right[mask].mean())
    return out


def _hand_feature(tower: Tower, images: list, labels: np.ndarray) -> float:
    """Share of (clean, degraded) pairs where the degraded copy has the larger mean |horizontal difference|
    of the reward's pixel values: the degradation is in the tower's input when this is near 1."""
    grads = []
    for image in images:
        pixels, _ = tower.pixel_values([image])
        side = tower.processor.image_processor.patch_size
        patches = pixels.reshape(pixels.shape[0], 3, 2, side, side)[:, :, 0]
        grads.append(float(patches.diff(dim=-1).abs().mean()))
    grads = np.asarray(grads).reshape(-1, 2)
    return float((grads[:, 1] > grads[:, 0]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = Path(os.environ.get("CGRPO_WORKSPACE", tempfile.gettempdir())) / "bench_toy_hpsv3"
    parser.add_argument("--workspace", type=Path, default=default, help=f"default: {default}")
    parser.add_argument("--target", choices=("degraded", *LABELS), default="degraded")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=64, help="images per step")
    parser.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate (the toy HPSv3's: 2e-3)")
    parser.add_argument("--every", type=int, default=100, help="held-out accuracy every this many steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="a trained toy HPSv3 folder (base/ + HPSv3.safetensors, e.g. a bench_toy_hpsv3 run's hpsv3/): "
        "probe its tower as trained (frozen; the linear head alone learns) instead of training a fresh one",
    )
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    zoo = ZooRewardsConfig()
    updates = dict(item.split("=", 1) for item in args.set)
    lists = {k: v.split(",") if "," in v else v for k, v in updates.items()}  # pydantic parses the text
    cfg = HPSv3TrainConfig.model_validate({**zoo.hpsv3.model_dump(), **lists})
    world = args.workspace / "world"
    if not (world / "world.json").is_file():
        generate_toy_world(ToyWorldConfig(workers=args.threads), world, progress=False)
    start = time.perf_counter()
    corpus = args.workspace / "corpus_world"  # rendered too with --set render_corpus=true
    train = training_renders((world, corpus) if (corpus / "world.json").is_file() else (world,), cfg)
    held = _toybench_renders(world)
    rng = np.random.default_rng(0)
    if args.target == "degraded":
        train_images, train_labels, _ = _degraded_set(train, rng, zoo.degradation)
        test_images, test_labels, test_groups = _degraded_set(held, rng, zoo.degradation)
        classes = 2
    else:
        train_images = [Image.fromarray(x) for x in train.images]
        train_labels = template_labels(train.templates, args.target)
        test_images = [Image.fromarray(x) for x in held.images]
        test_labels = template_labels(held.templates, args.target)
        test_groups = ["none" if k == 0 else "asked" for k in test_labels]
        classes = len(LABELS[args.target])
    if args.model is not None:  # a trained toy HPSv3: its tower stays as trained, only the head learns
        tower = Tower(cfg, args.model, classes, frozen=True)
    else:
        with tempfile.TemporaryDirectory() as folder:
            build_hpsv3(folder, cfg, world_corpus(syncd_views(world).captions))
            tower = Tower(cfg, Path(folder), classes, frozen=False)
    optimizer = torch.optim.AdamW(tower.parameters(), lr=args.lr, weight_decay=0.01)
    seconds = time.perf_counter() - start
    print(f"{len(train_images)} training images, {len(test_images)} held-out (ToyBench); {seconds:.0f} s")
    if args.target == "degraded":
        floor = _hand_feature(tower, test_images, test_labels)
        print(f"hand feature (mean |horizontal difference|), held-out pairs: {floor:.3f}")
    curve = []
    start = time.perf_counter()
    for step in range(args.steps + 1):
        if step % args.every == 0 or step == args.steps:
            tower.train(False)
            accuracy = _accuracies(tower, test_images, test_labels, test_groups)
            tower.train(True)
            curve.append({"step": step, "seconds": time.perf_counter() - start, **accuracy})
            print(
                f"step {step:5d} ({time.perf_counter() - start:5.0f} s) held-out accuracy "
                + ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items()),
                flush=True,
            )
        if step == args.steps:
            break
        batch = rng.integers(len(train_images), size=args.batch)
        loss = F.cross_entropy(
            tower.logits([train_images[i] for i in batch]), torch.as_tensor(train_labels[batch])
        )
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tower.parameters(), 1.0)
        optimizer.step()
    record = {
        "target": args.target,
        "model": None if args.model is None else str(args.model),
        "steps": args.steps,
        "lr": args.lr,
        "batch": args.batch,
        "overrides": updates,
        "curve": curve,
    }
    with open(args.workspace / "vision_probe_runs.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
