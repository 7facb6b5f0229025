"""Backgrounds of the toy world: one painter per DreamBench recontextualisation (plus a plain studio).

Each painter draws the context on a :class:`Canvas` with some seeded random detail (leaf positions,
building heights ...), so two views in the same context are alike but not identical. ``CONTEXTS`` maps the
prompt phrase of DreamBench's templates to its painter name; ``PAINTERS`` maps names to functions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cgrpo_core.toy.world.raster import Canvas, rgb

__all__ = ["CONTEXTS", "PAINTERS", "paint_background"]

SKY, SKY_LOW = rgb((120, 170, 230)), rgb((200, 225, 245))


def _sky(c: Canvas, horizon: float) -> None:
    c.gradient(SKY, SKY_LOW, 0.0, horizon)


def _scatter(
    c: Canvas,
    rng: np.random.Generator,
    count: int,
    colors: list,
    r: tuple[float, float],
    y: tuple[float, float] = (0.0, 1.0),
    aspect: tuple[float, float] = (1.0, 1.0),
) -> None:
    for _ in range(count):
        radius = rng.uniform(*r)
        color = colors[rng.integers(len(colors))]
        c.paint(
            c.ellipse(rng.uniform(0, 1), rng.uniform(*y), radius * rng.uniform(*aspect), radius), rgb(color)
        )


def plain(c: Canvas, rng: np.random.Generator) -> None:
    shade = rng.uniform(0.95, 1.05)
    c.gradient(rgb((222, 222, 218), shade), rgb((186, 186, 182), shade))


def jungle(c: Canvas, rng: np.random.Generator) -> None:
    c.gradient(rgb((30, 95, 40)), rgb((15, 60, 25)))
    _scatter(
        c,
        rng,
        22,
        [(60, 150, 50), (20, 120, 60), (90, 170, 70), (40, 110, 30)],
        (0.05, 0.11),
        aspect=(1.6, 2.4),
    )


def snow(c: Canvas, rng: np.random.Generator) -> None:
    c.gradient(rgb((185, 200, 215)), rgb((225, 232, 240)), 0.0, 0.5)
    c.gradient(rgb((250, 250, 252)), rgb((232, 236, 242)), 0.5, 1.0)
    _scatter(c, rng, 25, [(255, 255, 255)], (0.006, 0.014), y=(0.0, 0.5))


def beach(c: Canvas, rng: np.random.Generator) -> None:
    horizon = rng.uniform(0.3, 0.38)
    _sky(c, horizon)
    c.gradient(rgb((30, 110, 190)), rgb((60, 150, 210)), horizon, horizon + 0.15)
    c.paint(c.rect(0, horizon + 0.15, 1, horizon + 0.17), rgb((250, 250, 250)))
    c.gradient(rgb((235, 210, 150)), rgb((215, 185, 125)), horizon + 0.17, 1.0)


def cobblestone(c: Canvas, rng: np.random.Generator) -> None:
    c.fill(rgb((70, 70, 72)))
    for row, y in enumerate(np.arange(0.04, 1.05, 0.085)):
        for x in np.arange(0.0 if row % 2 else 0.05, 1.05, 0.1):
            c.paint(c.ellipse(x, y, 0.043, 0.036), rgb((150, 148, 140), rng.uniform(0.8, 1.15)))


def pink_fabric(c: Canvas, rng: np.random.Generator) -> None:
    phase, freq = rng.uniform(0, 2 * np.pi), rng.uniform(9, 13)
    shade = 0.85 + 0.15 * np.sin(freq * (c.x + 0.6 * c.y) + phase)[..., None]
    c.rgb[:] = rgb((245, 150, 190)) * shade


def wooden_floor(c: Canvas, rng: np.random.Generator) -> None:
    for y in np.arange(0.0, 1.0, 0.11):
        c.paint(c.rect(0, y, 1, y + 0.11), rgb((150, 100, 60), rng.uniform(0.85, 1.15)))
        c.paint(c.rect(0, y, 1, y + 0.012), rgb((80, 50, 30)))
        x = rng.uniform(0.1, 0.9)
        c.paint(c.rect(x, y, x + 0.012, y + 0.11), rgb((80, 50, 30)))


def city(c: Canvas, rng: np.random.Generator) -> None:
    _sky(c, 0.85)
    x = -rng.uniform(0, 0.1)
    while x < 1.0:
        width, top = rng.uniform(0.1, 0.2), rng.uniform(0.15, 0.55)
        c.paint(c.rect(x, top, x + width, 0.85), rgb((110, 115, 125), rng.uniform(0.75, 1.2)))
        for wy in np.arange(top + 0.04, 0.8, 0.08):
            c.paint(c.rect(x + 0.02, wy, x + width - 0.02, wy + 0.03), rgb((240, 220, 140)))
        x += width + rng.uniform(0.0, 0.03)
    c.paint(c.rect(0, 0.85, 1, 1), rgb((90, 90, 90)))


def mountain(c: Canvas, rng: np.random.Generator) -> None:
    _sky(c, 1.0)
    for _ in range(3):
        peak, half = rng.uniform(0.0, 1.0), rng.uniform(0.3, 0.5)
        top = rng.uniform(0.15, 0.35)
        c.paint(
            c.polygon(np.array([[peak - half, 0.8], [peak, top], [peak + half, 0.8]])), rgb((110, 105, 120))
        )
        cap = (0.8 - top) * 0.3
        c.paint(
            c.polygon(
                np.array([[peak - half * 0.3, top + cap], [peak, top], [peak + half * 0.3, top + cap]])
            ),
            rgb((250, 250, 250)),
        )
    c.gradient(rgb((90, 150, 70)), rgb((60, 120, 50)), 0.72, 1.0)


def blue_house(c: Canvas, rng: np.random.Generator) -> None:
    _sky(c, 0.6)
    c.gradient(rgb((90, 160, 70)), rgb((70, 130, 55)), 0.6, 1.0)
    x = rng.choice([rng.uniform(0.02, 0.2), rng.uniform(0.55, 0.72)])
    c.paint(c.rect(x, 0.3, x + 0.28, 0.62), rgb((40, 80, 200)))
    c.paint(c.polygon(np.array([[x - 0.04, 0.31], [x + 0.14, 0.14], [x + 0.32, 0.31]])), rgb((150, 40, 40)))
    c.paint(c.rect(x + 0.11, 0.47, x + 0.17, 0.62), rgb((240, 240, 240)))


def purple_rug_forest(c: Canvas, rng: np.random.Generator) -> None:
    c.gradient(rgb((40, 90, 50)), rgb((30, 70, 35)))
    for x in rng.uniform(0, 1, 5):
        c.paint(c.rect(x - 0.025, 0.2, x + 0.025, 0.75), rgb((90, 60, 35)))
        c.paint(c.ellipse(x, 0.2, 0.12), rgb((30, 120, 45), rng.uniform(0.8, 1.2)))
    c.paint(c.ellipse(0.5, 0.82, 0.42, 0.14), rgb((120, 50, 160)))


def wheat_field(c: Canvas, rng: np.random.Generator) -> None:
    _sky(c, 0.4)
    c.gradient(rgb((225, 185, 70)), rgb((200, 155, 50)), 0.4, 1.0)
    for _ in range(60):
        x, y = rng.uniform(0, 1), rng.uniform(0.42, 1.0)
        c.paint(c.rect(x, y, x + 0.008, y + 0.05), rgb((170, 120, 40)))


def autumn_tree(c: Canvas, rng: np.random.Generator) -> None:
    _sky(c, 0.7)
    c.gradient(rgb((190, 150, 100)), rgb((160, 120, 80)), 0.7, 1.0)
    x = rng.choice([rng.uniform(0.1, 0.25), rng.uniform(0.75, 0.9)])
    c.paint(c.rect(x - 0.03, 0.3, x + 0.03, 0.75), rgb((100, 65, 35)))
    leaves = [(220, 110, 30), (200, 50, 30), (240, 180, 40)]
    for _ in range(14):
        c.paint(
            c.ellipse(x + rng.normal(0, 0.1), 0.25 + rng.normal(0, 0.06), rng.uniform(0.05, 0.09)),
            rgb(leaves[rng.integers(3)]),
        )
    _scatter(c, rng, 12, leaves, (0.008, 0.015), y=(0.72, 1.0))


def eiffel_tower(c: Canvas, rng: np.random.Generator) -> None:
    _sky(c, 0.85)
    c.paint(c.rect(0, 0.85, 1, 1), rgb((120, 140, 110)))
    x = rng.choice([rng.uniform(0.15, 0.25), rng.uniform(0.75, 0.85)])
    c.paint(c.polygon(np.array([[x - 0.14, 0.86], [x, 0.05], [x + 0.14, 0.86]])), rgb((85, 70, 60)))
    c.paint(c.ellipse(x, 0.86, 0.07, 0.1), rgb((200, 215, 235)))
    c.paint(c.rect(x - 0.09, 0.5, x + 0.09, 0.53), rgb((85, 70, 60)))


def water(c: Canvas, rng: np.random.Generator) -> None:
    _sky(c, 0.3)
    c.gradient(rgb((40, 110, 180)), rgb((20, 70, 140)), 0.3, 1.0)
    phase = rng.uniform(0, 2 * np.pi)
    waves = (np.sin(40 * c.x + 25 * c.y + phase) > 0.93) & (c.y > 0.32)
    c.paint(waves, rgb((150, 200, 240)))


def milk(c: Canvas, rng: np.random.Generator) -> None:
    c.gradient(rgb((215, 225, 235)), rgb((235, 238, 240)), 0.0, 0.25)
    c.gradient(rgb((252, 250, 240)), rgb((240, 236, 222)), 0.25, 1.0)
    phase = rng.uniform(0, 2 * np.pi)
    c.paint((np.sin(35 * c.x + 20 * c.y + phase) > 0.9) & (c.y > 0.27), rgb((215, 210, 195)))


def sunflowers(c: Canvas, rng: np.random.Generator) -> None:
    _sky(c, 0.3)
    c.gradient(rgb((80, 170, 60)), rgb((50, 130, 40)), 0.3, 1.0)
    for _ in range(9):
        x, y = rng.uniform(0, 1), rng.uniform(0.35, 1.0)
        c.paint(c.ellipse(x, y, 0.05), rgb((250, 210, 20)))
        c.paint(c.ellipse(x, y, 0.02), rgb((110, 70, 20)))


def mirror(c: Canvas, rng: np.random.Generator) -> None:
    c.gradient(rgb((200, 205, 215)), rgb((160, 168, 180)))
    x = rng.uniform(0.1, 0.9)
    c.paint(c.polygon(np.array([[x, 0], [x + 0.08, 0], [x - 0.22, 1], [x - 0.3, 1]])), rgb((235, 240, 248)))


def crowded_street(c: Canvas, rng: np.random.Generator) -> None:
    c.gradient(rgb((120, 120, 125)), rgb((100, 100, 105)), 0.0, 0.4)
    c.gradient(rgb((190, 188, 182)), rgb((165, 163, 158)), 0.4, 1.0)
    clothes = [(200, 60, 60), (60, 90, 170), (40, 40, 40), (230, 200, 60), (90, 150, 90)]
    for x in np.sort(rng.uniform(0, 1, 7)):
        c.paint(c.rect(x - 0.035, 0.18, x + 0.035, 0.42), rgb(clothes[rng.integers(5)]))
        c.paint(c.ellipse(x, 0.14, 0.03), rgb((225, 185, 150)))


def dirt_road(c: Canvas, rng: np.random.Generator) -> None:
    _sky(c, 0.3)
    c.gradient(rgb((90, 150, 60)), rgb((70, 130, 50)), 0.3, 1.0)
    top = rng.uniform(0.45, 0.55)
    c.paint(
        c.polygon(np.array([[top - 0.05, 0.3], [top + 0.05, 0.3], [1.05, 1.0], [-0.05, 1.0]])),
        rgb((160, 120, 80)),
    )
    _scatter(c, rng, 15, [(130, 95, 60)], (0.008, 0.02), y=(0.5, 1.0))


def white_rug(c: Canvas, rng: np.random.Generator) -> None:
    c.gradient(rgb((200, 180, 150)), rgb((175, 155, 125)))
    c.paint(c.ellipse(0.5, 0.78, rng.uniform(0.38, 0.45), 0.17), rgb((248, 248, 245)))


PAINTERS: dict[str, Callable[[Canvas, np.random.Generator], None]] = {
    f.__name__: f
    for f in (
        plain,
        jungle,
        snow,
        beach,
        cobblestone,
        pink_fabric,
        wooden_floor,
        city,
        mountain,
        blue_house,
        purple_rug_forest,
        wheat_field,
        autumn_tree,
        eiffel_tower,
        water,
        milk,
        sunflowers,
        mirror,
        crowded_street,
        dirt_road,
        white_rug,
    )
}

# DreamBench's recontextualisation phrases (after the class word) -> painter.
CONTEXTS: dict[str, str] = {
    "in the jungle": "jungle",
    "in the snow": "snow",
    "on the beach": "beach",
    "on a cobblestone street": "cobblestone",
    "on top of pink fabric": "pink_fabric",
    "on top of a wooden floor": "wooden_floor",
    "with a city in the background": "city",
    "with a mountain in the background": "mountain",
    "with a blue house in the background": "blue_house",
    "on top of a purple rug in a forest": "purple_rug_forest",
    "with a wheat field in the background": "wheat_field",
    "with a tree and autumn leaves in the background": "autumn_tree",
    "with the Eiffel Tower in the background": "eiffel_tower",
    "floating on top of water": "water",
    "floating in an ocean of milk": "milk",
    "on top of green grass with sunflowers around it": "sunflowers",
    "on top of a mirror": "mirror",
    "on top of the sidewalk in a crowded street": "crowded_street",
    "on top of a dirt road": "dirt_road",
    "on top of a white rug": "white_rug",
}


def paint_background(c: Canvas, name: str, rng: np.random.Generator) -> None:
    if name not in PAINTERS:
        raise ValueError(f"unknown toy background {name!r}; choose one of {sorted(PAINTERS)}")
    PAINTERS[name](c, rng)
