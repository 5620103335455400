"""The vocabulary of the shapes world and its held-out split (attribute combinations never drawn in training)."""

from __future__ import annotations

IMAGE_SIZE = 64
BACKGROUND_RGB = (236, 236, 236)

# Colour words and the flat RGB each is drawn with (hues far apart, all far from the light-grey background).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 160, 60),
    "blue": (40, 75, 215),
    "yellow": (235, 205, 30),
    "orange": (240, 130, 20),
    "purple": (135, 50, 180),
}
SHAPES = ("circle", "square", "triangle")
POSITIONS = ("left", "right", "top", "bottom", "centre")
SIZES = ("small", "large")

# Object centres (x, y) in pixels of a 64x64 image, before a small seeded jitter.
POSITION_CENTRES = {
    "left": (17, 32),
    "right": (47, 32),
    "top": (32, 17),
    "bottom": (32, 47),
    "centre": (32, 32),
}
# Half-extent in pixels (circle radius, half the square side, half the triangle base/height).
SIZE_RADIUS = {"small": 8, "large": 13}
POSITION_JITTER = 2
SIZE_JITTER = 1

# Two-object scenes place their objects on opposite sides.
PAIRED_POSITIONS = (("left", "right"), ("top", "bottom"))

# Colour x shape pairs that never appear in training scenes (each colour and each shape still appear).
HELDOUT_COMBOS = frozenset({("red", "triangle"), ("blue", "circle"), ("green", "square"), ("orange", "triangle")})


def is_heldout_combo(colour: str, shape: str) -> bool:
    return (colour, shape) in HELDOUT_COMBOS
