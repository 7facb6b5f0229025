"""Toy subjects: a class (DreamBench's 15 classes) plus a visual identity that is visible at 64 px.

Identity = body shape x main colour x pattern x secondary colour (pattern and some class parts use the
secondary colour). The class decides the parts drawn around the body (a dog's head, legs and tail, a
teapot's spout and handle, a candle's flame ...) and whether the subject is live (DreamBench's live-subject
prompts: dogs and cats) and deformable (SynCD's deformable category: animals change pose between views).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = [
    "CLASSES",
    "COLORS",
    "PATTERNS",
    "SHAPES",
    "ClassSpec",
    "Subject",
    "drifted",
    "sample_subject",
]

# Named colours (sRGB 0-255), far enough apart to tell at 64 px.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40),
    "orange": (255, 127, 14),
    "yellow": (240, 200, 30),
    "green": (44, 160, 44),
    "teal": (23, 170, 170),
    "blue": (31, 90, 200),
    "purple": (128, 50, 170),
    "pink": (240, 120, 190),
    "brown": (140, 86, 50),
    "white": (245, 245, 245),
    "black": (30, 30, 30),
    "grey": (128, 128, 128),
}
# shape -> adjective in captions
SHAPES: dict[str, str] = {
    "circle": "round",
    "square": "square",
    "triangle": "triangular",
    "star": "star-shaped",
    "hexagon": "hexagonal",
    "diamond": "diamond-shaped",
}
# pattern -> caption words ("" for plain)
PATTERNS: dict[str, str] = {"plain": "", "stripes": "stripes", "dots": "dots", "checks": "checks"}


@dataclass(frozen=True)
class ClassSpec:
    live: bool  # DreamBench live-subject prompt list (accessories)
    deformable: bool  # SynCD category: deformable (pose changes) vs rigid


CLASSES: dict[str, ClassSpec] = {
    name: ClassSpec(live=name in ("dog", "cat"), deformable=name in ("dog", "cat"))
    for name in (
        "backpack",
        "stuffed animal",
        "bowl",
        "can",
        "candle",
        "cat",
        "clock",
        "sneaker",
        "dog",
        "toy",
        "boot",
        "glasses",
        "cartoon",
        "teapot",
        "vase",
    )
}


@dataclass(frozen=True)
class Subject:
    """One toy subject: its class and identity attributes (names from the tables above)."""

    class_name: str
    shape: str
    color: str
    pattern: str
    secondary: str

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """What makes two subjects the same identity."""
        return (self.class_name, self.shape, self.color, self.pattern, self.secondary)

    @property
    def category(self) -> str:
        return "deformable" if CLASSES[self.class_name].deformable else "rigid"

    def description(self) -> str:
        """Caption of the identity: ``"red round dog with blue stripes"``."""
        words = f"{self.color} {SHAPES[self.shape]} {self.class_name}"
        if self.pattern != "plain":
            words += f" with {self.secondary} {PATTERNS[self.pattern]}"
        return words

    def name(self) -> str:
        """A folder name in DreamBench's style: ``"red_striped_dog"``."""
        adjective = {"plain": "plain", "stripes": "striped", "dots": "dotted", "checks": "checked"}[
            self.pattern
        ]
        return f"{self.color}_{adjective}_{self.class_name.replace(' ', '_')}"


def sample_subject(
    rng: np.random.Generator, class_name: str, exclude: set | frozenset = frozenset()
) -> Subject:
    """A random identity of ``class_name`` whose key is not in ``exclude``."""
    if class_name not in CLASSES:
        raise ValueError(f"unknown toy class {class_name!r}; choose one of {sorted(CLASSES)}")
    colors, shapes, patterns = list(COLORS), list(SHAPES), list(PATTERNS)
    for _ in range(1000):
        color = colors[rng.integers(len(colors))]
        secondary = [c for c in colors if c != color][rng.integers(len(colors) - 1)]
        subject = Subject(
            class_name,
            shapes[rng.integers(len(shapes))],
            color,
            patterns[rng.integers(len(patterns))],
            secondary,
        )
        if subject.key not in exclude:
            return subject
    raise ValueError(f"could not draw a new {class_name!r} identity: too many excluded")


def drifted(subject: Subject, rng: np.random.Generator, exclude: set | frozenset = frozenset()) -> Subject:
    """Another identity of the same class differing in every attribute (a generator losing identity),
    whose key is not in ``exclude``."""

    def other(options: list[str], *avoid: str) -> str:
        left = [o for o in options if o not in avoid]
        return left[rng.integers(len(left))]

    for _ in range(1000):
        color = other(list(COLORS), subject.color, subject.secondary)
        candidate = replace(
            subject,
            shape=other(list(SHAPES), subject.shape),
            color=color,
            pattern=other(list(PATTERNS), subject.pattern),
            secondary=other(list(COLORS), color, subject.secondary),
        )
        if candidate.key not in exclude:
            return candidate
    raise ValueError(f"could not draw a drifted identity of {subject}: too many excluded")
