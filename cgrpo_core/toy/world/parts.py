"""What is drawn around a subject's body: class parts, worn accessories, property effects, companions.

All coordinates here are *body-local*: the body has radius 1 around (0, 0), x right, y down. A
:class:`SubjectPainter` maps them to the image (scale, aspect, rotation, flip, position) and paints on the
canvas; parts marked ``subject=True`` belong to the subject's mask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cgrpo_core.toy.world.raster import Canvas, circle_points, rgb

__all__ = ["ACCESSORIES", "BODIES", "CLASS_PARTS", "COMPANIONS", "HEAD", "SubjectPainter"]

DARK, LIGHT = rgb((35, 35, 35)), rgb((240, 240, 235))
HEAD = (1.0, -0.78, 0.5)  # head centre x, y and radius of live subjects (body-local)
# Copies of the body shape (centre x, y, radius); a pair of glasses has two lenses.
BODIES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "glasses": ((-1.05, 0.0, 0.72), (1.05, 0.0, 0.72))
}


@dataclass
class SubjectPainter:
    """Paints body-local shapes onto ``canvas`` through the view's transform."""

    canvas: Canvas
    center: tuple[float, float]
    scale: float
    angle: float  # radians
    flip: bool
    aspect: tuple[float, float]
    main: np.ndarray
    secondary: np.ndarray
    body: np.ndarray | None = None  # (N, N) body mask, set once the body is drawn

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Body-local points (K, 2) -> image fractions (K, 2)."""
        pts = np.asarray(points, dtype=np.float64) * np.array(self.aspect)
        if self.flip:
            pts = pts * np.array([-1.0, 1.0])
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        rotated = np.stack([cos * pts[:, 0] - sin * pts[:, 1], sin * pts[:, 0] + cos * pts[:, 1]], axis=1)
        return rotated * self.scale + np.array(self.center)

    def to_local(self) -> tuple[np.ndarray, np.ndarray]:
        """Body-local coordinates (u, v) of every canvas pixel, each (N, N)."""
        dx = (self.canvas.x - self.center[0]) / self.scale
        dy = (self.canvas.y - self.center[1]) / self.scale
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        u, v = cos * dx + sin * dy, -sin * dx + cos * dy
        return (-u if self.flip else u) / self.aspect[0], v / self.aspect[1]

    def mask(self, points: np.ndarray) -> np.ndarray:
        return self.canvas.polygon(self.to_image(points))

    def poly(self, points, color, subject: bool | None = True, clip_to_body: bool = False) -> np.ndarray:
        mask = self.mask(np.asarray(points))
        if clip_to_body and self.body is not None:
            mask &= self.body
        self.canvas.paint(mask, color, subject=subject)
        return mask

    def ellipse(self, cx, cy, rx, ry=None, color=DARK, subject: bool | None = True, clip_to_body=False):
        return self.poly(circle_points(cx, cy, rx, ry), color, subject, clip_to_body)

    def rect(self, x0, y0, x1, y1, color=DARK, subject: bool | None = True, clip_to_body=False):
        return self.poly([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], color, subject, clip_to_body)

    def bar(self, x0, y0, x1, y1, width, color, subject: bool | None = True):
        """A thick segment from (x0, y0) to (x1, y1)."""
        d = np.array([x1 - x0, y1 - y0], dtype=np.float64)
        n = np.array([-d[1], d[0]]) / (np.linalg.norm(d) + 1e-9) * width / 2
        a, b = np.array([x0, y0]), np.array([x1, y1])
        return self.poly([a + n, b + n, b - n, a - n], color, subject)

    def ring(self, cx, cy, r_out, r_in, color, start=0.0, stop=2 * np.pi, subject: bool | None = True):
        outer = circle_points(cx, cy, r_out, n=24, start=start, stop=stop)
        inner = circle_points(cx, cy, r_in, n=24, start=start, stop=stop)[::-1]
        return self.poly(np.concatenate([outer, inner]), color, subject)


# ---------------------------------------------------------------------------------------------------
# Class parts: (painter, front) -> None; called once before the body (front=False) and once after.


def _live(p: SubjectPainter, front: bool, pose: float, tail: float, cat: bool) -> None:
    hx, hy, hr = HEAD
    if not front:
        for i, x in enumerate((-0.65, -0.25, 0.25, 0.65)):
            swing = np.radians(pose if i % 2 else -pose)
            p.bar(x, 0.2, x + 1.1 * np.sin(swing), 0.2 + 1.1 * np.cos(swing), 0.24, p.main * 0.85)
        length, width = (1.15, 0.16) if cat else (0.75, 0.26)
        t = np.radians(tail) + (np.radians(-60) if cat else np.radians(-30))
        p.bar(-0.85, -0.1, -0.85 - length * np.cos(t), -0.1 + length * np.sin(t), width, p.main * 0.9)
        if cat:
            for side in (-1, 1):
                p.poly(
                    [
                        [hx + side * 0.45, hy - 0.05],
                        [hx + side * 0.4, hy - 0.75],
                        [hx + side * 0.05, hy - 0.4],
                    ],
                    p.main,
                )
        return
    p.ellipse(hx, hy, hr, color=p.main)
    if not cat:
        for side in (-1, 1):
            p.ellipse(hx + side * 0.45, hy + 0.1, 0.17, 0.33, color=p.secondary)
    for side in (-1, 1):
        p.ellipse(hx + side * 0.17, hy - 0.08, 0.075, color=DARK)
    p.ellipse(hx, hy + 0.18, 0.09, 0.06, color=DARK)


def _backpack(p, front):
    if front:
        p.rect(-0.45, 0.1, 0.45, 0.62, p.secondary, clip_to_body=True)
    else:
        p.ring(0.0, -0.95, 0.45, 0.28, p.secondary * 0.7, start=np.pi, stop=2 * np.pi)


def _stuffed_animal(p, front):
    if not front:
        for side in (-1, 1):
            p.ellipse(side * 0.62, -0.85, 0.33, color=p.main)
        return
    for side in (-1, 1):
        p.ellipse(side * 0.3, -0.25, 0.1, color=DARK)
    p.ellipse(0.0, 0.05, 0.14, 0.1, color=p.secondary)


def _bowl(p, front):
    if front:
        p.ellipse(0.0, -0.5, 0.75, 0.2, color=p.main * 0.45)


def _can(p, front):
    if front:
        p.rect(-1.1, -0.2, 1.1, 0.3, p.secondary, clip_to_body=True)
        p.ellipse(0.0, -0.88, 0.6, 0.14, color=rgb((200, 200, 205)))


def _candle(p, front):
    if front:
        p.ellipse(0.0, -1.45, 0.2, 0.36, color=rgb((250, 200, 40)))
        p.ellipse(0.0, -1.38, 0.1, 0.18, color=rgb((240, 110, 20)))
        p.rect(-0.03, -1.12, 0.03, -0.92, DARK)


def _clock(p, front):
    if front:
        p.ellipse(0.0, 0.0, 0.6, color=rgb((248, 244, 225)))
        p.bar(0.0, 0.0, 0.0, -0.5, 0.1, DARK)
        p.bar(0.0, 0.0, 0.35, 0.12, 0.1, DARK)


def _sneaker(p, front):
    if front:
        p.rect(-1.2, 0.62, 1.2, 0.92, LIGHT)
        for x in (-0.35, -0.05, 0.25):
            p.bar(x, -0.45, x + 0.25, -0.25, 0.08, DARK)


def _toy(p, front):
    if front:
        for side in (-1, 1):
            p.ellipse(side * 0.55, 0.95, 0.3, color=DARK)
            p.ellipse(side * 0.55, 0.95, 0.12, color=LIGHT)
    else:
        p.rect(-0.04, -1.5, 0.04, -0.8, DARK)
        p.ellipse(0.0, -1.5, 0.12, color=rgb((220, 40, 40)))


def _boot(p, front):
    if front:
        p.rect(-1.05, 0.75, 1.05, 0.98, DARK)
    else:
        p.rect(-0.95, -1.7, -0.05, -0.3, p.main * 0.9)


def _glasses(p, front):
    if front:
        p.rect(-0.4, -0.2, 0.4, -0.04, DARK)
    else:
        p.bar(-1.75, -0.1, -2.2, -0.4, 0.1, DARK)


def _cartoon(p, front):
    if front:
        for side in (-1, 1):
            p.ellipse(side * 0.35, -0.2, 0.26, color=LIGHT)
            p.ellipse(side * 0.35 + 0.05, -0.17, 0.11, color=DARK)
        p.ring(0.0, 0.25, 0.35, 0.25, DARK, start=0.2 * np.pi, stop=0.8 * np.pi)


def _teapot(p, front):
    if front:
        p.ellipse(0.0, -1.02, 0.16, color=p.secondary)
    else:
        p.poly([[0.7, 0.2], [1.55, -0.55], [1.65, -0.4], [0.8, 0.45]], p.main * 0.9)
        p.ring(-1.0, 0.0, 0.5, 0.3, p.main * 0.9, start=0.5 * np.pi, stop=1.5 * np.pi)


def _vase(p, front):
    if front:
        p.rect(-0.45, -1.62, 0.45, -1.45, p.secondary)
    else:
        p.rect(-0.28, -1.5, 0.28, -0.6, p.main)


CLASS_PARTS: dict[str, Callable[..., None]] = {
    "backpack": _backpack,
    "stuffed animal": _stuffed_animal,
    "bowl": _bowl,
    "can": _can,
    "candle": _candle,
    "clock": _clock,
    "sneaker": _sneaker,
    "toy": _toy,
    "boot": _boot,
    "glasses": _glasses,
    "cartoon": _cartoon,
    "teapot": _teapot,
    "vase": _vase,
    "dog": lambda p, front, pose=0.0, tail=0.0: _live(p, front, pose, tail, cat=False),
    "cat": lambda p, front, pose=0.0, tail=0.0: _live(p, front, pose, tail, cat=True),
}


# ---------------------------------------------------------------------------------------------------
# Accessories of live subjects (DreamBench's accessorisation prompts), drawn after the head.

RED, WHITE, BLACK = rgb((215, 30, 35)), rgb((250, 250, 250)), rgb((15, 15, 15))
RAINBOW = [
    rgb(c)
    for c in ((230, 40, 40), (250, 150, 20), (245, 220, 40), (60, 180, 60), (40, 100, 220), (130, 50, 180))
]


def _cap(p, color, brim):
    hx, hy, hr = HEAD
    p.ellipse(hx, hy - hr * 0.7, hr * 0.9, hr * 0.55, color=color)
    p.rect(hx - hr * 1.1, hy - hr * 0.72, hx + hr * 1.2, hy - hr * 0.5, brim)


def _red_hat(p):
    _cap(p, RED, RED * 0.8)


def _santa_hat(p):
    hx, hy, hr = HEAD
    p.poly([[hx - hr, hy - hr * 0.55], [hx + hr, hy - hr * 0.55], [hx + hr * 1.3, hy - hr * 2.4]], RED)
    p.rect(hx - hr * 1.05, hy - hr * 0.75, hx + hr * 1.05, hy - hr * 0.4, WHITE)
    p.ellipse(hx + hr * 1.3, hy - hr * 2.4, hr * 0.25, color=WHITE)


def _rainbow_scarf(p):
    hx, hy, hr = HEAD
    for i, color in enumerate(RAINBOW):
        y = hy + hr * 0.6 + i * 0.07
        p.poly(
            [[hx - hr * 1.1, y], [hx + hr * 0.9, y], [hx + hr * 0.9, y + 0.075], [hx - hr * 1.1, y + 0.075]],
            color,
        )


def _top_hat_monocle(p):
    hx, hy, hr = HEAD
    p.rect(hx - hr * 0.6, hy - hr * 2.2, hx + hr * 0.6, hy - hr * 0.6, BLACK)
    p.rect(hx - hr * 1.0, hy - hr * 0.75, hx + hr * 1.0, hy - hr * 0.55, BLACK)
    p.ring(hx + 0.17, hy - 0.08, 0.16, 0.1, rgb((230, 190, 40)))


def _chef_outfit(p):
    hx, hy, hr = HEAD
    p.rect(hx - hr * 0.6, hy - hr * 1.6, hx + hr * 0.6, hy - hr * 0.6, WHITE)
    p.ellipse(hx, hy - hr * 1.7, hr * 0.75, hr * 0.45, color=WHITE)
    p.rect(-0.45, -0.35, 0.45, 0.75, WHITE, clip_to_body=True)


def _firefighter_outfit(p):
    _cap(p, rgb((170, 20, 20)), rgb((120, 15, 15)))
    for y in (-0.3, 0.25):
        p.rect(-1.2, y, 1.2, y + 0.17, rgb((250, 220, 40)), clip_to_body=True)


def _police_outfit(p):
    _cap(p, rgb((20, 30, 90)), BLACK)
    p.rect(-0.5, -0.45, 0.5, 0.55, rgb((25, 40, 110)), clip_to_body=True)
    p.ellipse(-0.2, -0.2, 0.1, color=rgb((230, 190, 40)))


def _pink_glasses(p):
    hx, hy, _ = HEAD
    for side in (-1, 1):
        p.ring(hx + side * 0.2, hy - 0.08, 0.17, 0.09, rgb((250, 100, 190)))
    p.rect(hx - 0.05, hy - 0.12, hx + 0.05, hy - 0.05, rgb((250, 100, 190)))


def _yellow_shirt(p):
    p.rect(-1.2, -1.2, 1.2, 0.15, rgb((250, 215, 30)), clip_to_body=True)


def _wizard_outfit(p):
    hx, hy, hr = HEAD
    purple = rgb((110, 40, 170))
    p.poly(
        [[hx - hr * 1.05, hy - hr * 0.5], [hx + hr * 1.05, hy - hr * 0.5], [hx - hr * 0.2, hy - hr * 2.8]],
        purple,
    )
    p.ellipse(hx, hy - hr * 1.3, 0.07, color=rgb((250, 220, 60)))
    p.rect(-1.2, -1.2, -0.15, 1.2, purple, clip_to_body=True)


# DreamBench's accessory phrases -> painter
ACCESSORIES: dict[str, Callable[[SubjectPainter], None]] = {
    "wearing a red hat": _red_hat,
    "wearing a santa hat": _santa_hat,
    "wearing a rainbow scarf": _rainbow_scarf,
    "wearing a black top hat and a monocle": _top_hat_monocle,
    "in a chef outfit": _chef_outfit,
    "in a firefighter outfit": _firefighter_outfit,
    "in a police outfit": _police_outfit,
    "wearing pink glasses": _pink_glasses,
    "wearing a yellow shirt": _yellow_shirt,
    "in a purple wizard outfit": _wizard_outfit,
}


# ---------------------------------------------------------------------------------------------------
# Companion objects (in front of the subject, partly covering it), in image fractions.


def _ball(c: Canvas, x, y, s):
    c.paint(c.ellipse(x, y, s), rgb((230, 60, 60)), subject=False)
    c.paint(c.ellipse(x, y, s, s * 0.25), rgb((250, 250, 250)), subject=False)


def _box(c: Canvas, x, y, s):
    c.paint(c.rect(x - s, y - s, x + s, y + s), rgb((180, 130, 80)), subject=False)
    c.paint(c.rect(x - s, y - s * 0.1, x + s, y + s * 0.1), rgb((220, 200, 150)), subject=False)


def _plant(c: Canvas, x, y, s):
    c.paint(
        c.polygon(np.array([[x - s * 0.7, y], [x + s * 0.7, y], [x + s * 0.5, y + s], [x - s * 0.5, y + s]])),
        rgb((190, 90, 50)),
        subject=False,
    )
    for dx in (-0.5, 0.0, 0.5):
        c.paint(c.ellipse(x + dx * s, y - s * 0.5, s * 0.45, s * 0.7), rgb((40, 140, 50)), subject=False)


def _cup(c: Canvas, x, y, s):
    c.paint(c.ellipse(x + s * 0.7, y, s * 0.45), rgb((235, 235, 240)), subject=False)
    c.paint(c.ellipse(x + s * 0.7, y, s * 0.25), rgb((200, 200, 205)), subject=False)
    c.paint(c.rect(x - s * 0.7, y - s, x + s * 0.7, y + s), rgb((235, 235, 240)), subject=False)


COMPANIONS: dict[str, Callable[[Canvas, float, float, float], None]] = {
    "ball": _ball,
    "box": _box,
    "plant": _plant,
    "cup": _cup,
}
