"""Render a toy subject into a scene: numpy + PIL, deterministic, crisp at 64 px.

A :class:`View` fixes everything about one image apart from the subject: context (background painter),
position, scale, rotation, flip, pose of a deformable subject, lighting, a worn accessory, a property change
(DreamBench's "a red / purple / shiny / wet / cube shaped X"), a companion object partly covering the subject,
a style and the seed of the background's random detail. :func:`render` returns the image and the subject's
mask (visible subject pixels, companions excluded). :func:`degrade` makes the low-quality renders of the
planted bad sets (noise plus blur, blocking or washed-out contrast).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from cgrpo_core.toy.world.backgrounds import paint_background
from cgrpo_core.toy.world.parts import ACCESSORIES, BODIES, CLASS_PARTS, COMPANIONS, DARK, SubjectPainter
from cgrpo_core.toy.world.raster import Canvas, circle_points, rgb
from cgrpo_core.toy.world.subjects import CLASSES, COLORS, Subject

__all__ = ["DEGRADATIONS", "PROPERTIES", "View", "degrade", "render", "shape_faces"]


@dataclass(frozen=True)
class View:
    """Everything about one image except the subject (see the module docstring)."""

    context: str = "plain"
    cx: float = 0.5
    cy: float = 0.56
    scale: float = 0.2  # body radius, fraction of the image side
    angle: float = 0.0  # degrees
    flip: bool = False
    aspect: tuple[float, float] = (1.0, 1.0)
    pose: float = 0.0  # leg swing of live subjects, degrees
    tail: float = 0.0  # tail angle of live subjects, degrees
    brightness: float = 1.0
    warmth: float = 0.0  # light colour: red x (1 + warmth), blue x (1 - warmth)
    accessory: str | None = None  # a key of parts.ACCESSORIES
    prop: str | None = None  # a key of PROPERTIES
    companion: str | None = None  # a key of parts.COMPANIONS
    companion_side: int = 1  # +1: right of the subject, -1: left
    style: str = "photo"  # photo or cartoon (dark outline)
    detail_seed: int = 0


def _regular(n: int, radius: float, phase: float = -np.pi / 2) -> np.ndarray:
    t = phase + np.arange(n) * 2 * np.pi / n
    return np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)


def _star() -> np.ndarray:
    outer, inner = _regular(5, 1.15), _regular(5, 0.5, phase=-np.pi / 2 + np.pi / 5)
    return np.stack([outer, inner], axis=1).reshape(-1, 2)


_SHAPES: dict[str, list[tuple[np.ndarray, float]]] = {
    "circle": [(circle_points(0, 0, 1.0, n=40), 1.0)],
    "square": [(np.array([[-0.88, -0.88], [0.88, -0.88], [0.88, 0.88], [-0.88, 0.88]]), 1.0)],
    "triangle": [(_regular(3, 1.2) + np.array([0.0, 0.2]), 1.0)],
    "star": [(_star(), 1.0)],
    "hexagon": [(_regular(6, 1.0, phase=0.0), 1.0)],
    "diamond": [(np.array([[0.0, -1.15], [0.82, 0.0], [0.0, 1.15], [-0.82, 0.0]]), 1.0)],
    # DreamBench's "cube shaped": a front face with a lighter top and a darker side (pattern on the front)
    "cube": [
        (np.array([[-0.9, -0.5], [0.5, -0.5], [0.5, 0.9], [-0.9, 0.9]]), 1.0),
        (np.array([[-0.9, -0.5], [-0.5, -0.9], [0.9, -0.9], [0.5, -0.5]]), 1.3),
        (np.array([[0.5, -0.5], [0.9, -0.9], [0.9, 0.5], [0.5, 0.9]]), 0.65),
    ],
}


def shape_faces(shape: str) -> list[tuple[np.ndarray, float]]:
    """Body-local polygons (K, 2) of a shape with their brightness; the first face carries the pattern."""
    if shape not in _SHAPES:
        raise ValueError(f"unknown toy shape {shape!r}; choose one of {sorted(_SHAPES)}")
    return _SHAPES[shape]


def _pattern(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    if name == "stripes":
        return np.floor((u + 4.0) * 2.2) % 2 == 0
    if name == "dots":
        return (u * 2.2 - np.round(u * 2.2)) ** 2 + (v * 2.2 - np.round(v * 2.2)) ** 2 < 0.3**2
    if name == "checks":
        return (np.floor(u * 2.0) + np.floor(v * 2.0)) % 2 == 0
    return np.zeros_like(u, dtype=bool)


def _draw_body(p: SubjectPainter, subject: Subject, shape: str) -> None:
    u, v = p.to_local()
    shade = (1.08 - 0.08 * (v + 1.0))[..., None]  # lit from above
    texture = np.where(_pattern(subject.pattern, u, v)[..., None], p.secondary, p.main) * shade  # (N, N, 3)
    body = np.zeros_like(p.canvas.subject)
    for bx, by, br in BODIES.get(subject.class_name, ((0.0, 0.0, 1.0),)):
        for i, (points, bright) in enumerate(shape_faces(shape)):
            mask = p.mask(points * br + np.array([bx, by]))
            p.canvas.paint(mask, texture if i == 0 else np.clip(p.main * bright, 0, 1), subject=True)
            body |= mask
    p.body = body


# Property changes (DreamBench): (subject, painter) hooks before/after the body is drawn.
def _recolor(name: str) -> Callable[[Subject], Subject]:
    return lambda s: replace(s, color=name, secondary=s.secondary if s.secondary != name else s.color)


PROPERTIES: dict[str, Callable[[Subject], Subject]] = {
    "red": _recolor("red"),
    "purple": _recolor("purple"),
    "shiny": lambda s: s,
    "wet": lambda s: s,
    "cube shaped": lambda s: replace(s, shape="cube"),
}


def _shiny(p: SubjectPainter, rng: np.random.Generator) -> None:
    for cx, cy, r in ((-0.35, -0.4, 0.3), (0.3, 0.25, 0.12)):
        p.canvas.paint(p.mask(circle_points(cx, cy, r, r * 0.6)) & p.body, np.ones(3, np.float32), alpha=0.85)
    for _ in range(5):
        x, y = rng.uniform(-1.6, 1.6, 2)
        star = np.array([[x, y - 0.22], [x + 0.06, y], [x, y + 0.22], [x - 0.06, y]])
        p.poly(star, np.ones(3, np.float32), subject=None)


def _wet(p: SubjectPainter, rng: np.random.Generator) -> None:
    for _ in range(9):
        x, y = rng.uniform(-0.8, 0.8, 2)
        p.canvas.paint(p.mask(circle_points(x, y, 0.08, 0.12)) & p.body, rgb((170, 210, 245)))
    for _ in range(4):
        x = rng.uniform(-0.8, 0.8)
        p.ellipse(x, rng.uniform(1.1, 1.5), 0.06, 0.1, color=rgb((120, 170, 230)), subject=None)


def _reflect(c: Canvas) -> None:
    """A faded upside-down copy of the subject below its lowest row (context 'on top of a mirror')."""
    rows = np.flatnonzero(c.subject.any(axis=1))
    if not len(rows):
        return
    base, height = rows[-1], rows[-1] - rows[0] + 1
    for r in range(base + 1, min(c.n, base + 1 + height)):
        src = 2 * base + 1 - r
        keep = c.subject[src]
        c.rgb[r, keep] = 0.6 * c.rgb[r, keep] + 0.4 * c.rgb[src, keep]


def render(
    subject: Subject, view: View, size: int = 64, supersample: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """The view of ``subject``: image uint8 (size, size, 3), subject mask uint8 (size, size) in {0, 255}."""
    rng = np.random.default_rng(view.detail_seed)
    canvas = Canvas(size, supersample)
    paint_background(canvas, view.context, rng)
    if view.prop is not None:
        subject = PROPERTIES[view.prop](subject)
    dim = 0.7 if view.prop == "wet" else (1.2 if view.prop == "shiny" else 1.0)
    painter = SubjectPainter(
        canvas,
        (view.cx, view.cy),
        view.scale,
        np.radians(view.angle),
        view.flip,
        view.aspect,
        rgb(COLORS[subject.color], dim),
        rgb(COLORS[subject.secondary], dim),
    )
    parts = CLASS_PARTS[subject.class_name]
    kwargs = {"pose": view.pose, "tail": view.tail} if CLASSES[subject.class_name].live else {}
    parts(painter, False, **kwargs)
    _draw_body(painter, subject, subject.shape)
    parts(painter, True, **kwargs)
    if view.accessory is not None:
        ACCESSORIES[view.accessory](painter)
    if view.prop == "shiny":
        _shiny(painter, rng)
    elif view.prop == "wet":
        _wet(painter, rng)
    if view.context == "mirror":
        _reflect(canvas)
    if view.style == "cartoon":
        canvas.paint(canvas.dilate(canvas.subject, supersample) & ~canvas.subject, DARK)
    if view.companion is not None:
        x = view.cx + view.companion_side * view.scale * 1.25
        COMPANIONS[view.companion](canvas, x, view.cy + view.scale * 0.45, view.scale * 0.55)
    canvas.rgb *= view.brightness * np.array([1 + view.warmth, 1.0, 1 - view.warmth], dtype=np.float32)
    return canvas.finish()


def _blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = image
    for _ in range(int(rng.integers(2, 4))):  # repeated 3x3 box blur
        padded = np.pad(out, ((1, 1), (1, 1), (0, 0)), mode="edge")
        out = (
            sum(padded[dy : dy + out.shape[0], dx : dx + out.shape[1]] for dy in range(3) for dx in range(3))
            / 9
        )
    return out


def _blocky(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    k = int(rng.choice([3, 4]))
    h, w, _ = image.shape
    blocks = image[: h - h % k, : w - w % k].reshape(h // k, k, w // k, k, 3).mean(axis=(1, 3))
    out = np.repeat(np.repeat(blocks, k, axis=0), k, axis=1)
    return np.pad(out, ((0, h % k), (0, w % k), (0, 0)), mode="edge")


def _washed(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 0.5 + (image - 0.5) * rng.uniform(0.25, 0.4) + np.array([0.06, 0.05, -0.04])


DEGRADATIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "blur": _blur,
    "blocky": _blocky,
    "washed": _washed,
}


def degrade(image: np.ndarray, kind: str, rng: np.random.Generator, noise: float = 0.15) -> np.ndarray:
    """A low-quality copy of ``image`` (uint8 (S, S, 3)): ``kind`` (blur, blocky, washed) plus Gaussian
    noise of std ``noise`` (fraction of the range)."""
    if kind not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {kind!r}; choose one of {sorted(DEGRADATIONS)}")
    out = DEGRADATIONS[kind](image.astype(np.float64) / 255.0, rng)
    out = out + rng.normal(0.0, noise, out.shape)
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)
