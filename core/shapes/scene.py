"""Seeded scenes of one or two flat-coloured objects on a plain background, rendered with per-object masks."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from core.shapes.world import (
    BACKGROUND_RGB,
    COLOURS,
    HELDOUT_COMBOS,
    IMAGE_SIZE,
    PAIRED_POSITIONS,
    POSITION_CENTRES,
    POSITION_JITTER,
    POSITIONS,
    SHAPES,
    SIZE_JITTER,
    SIZE_RADIUS,
    SIZES,
)


@dataclass(frozen=True)
class ShapeObject:
    colour: str
    shape: str
    position: str
    size: str
    # Pixel geometry, fixed by the scene's seed: centre and half-extent.
    cx: int = 0
    cy: int = 0
    radius: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Scene:
    objects: tuple[ShapeObject, ...]

    def as_dict(self) -> dict:
        return {"objects": [o.as_dict() for o in self.objects]}


def _place(rng, colour, shape, position, size) -> ShapeObject:
    cx, cy = POSITION_CENTRES[position]
    cx += int(rng.integers(-POSITION_JITTER, POSITION_JITTER + 1))
    cy += int(rng.integers(-POSITION_JITTER, POSITION_JITTER + 1))
    radius = SIZE_RADIUS[size] + int(rng.integers(-SIZE_JITTER, SIZE_JITTER + 1))
    return ShapeObject(colour, shape, position, size, cx, cy, radius)


def _combo_allowed(colour, shape, split):
    heldout = (colour, shape) in HELDOUT_COMBOS
    return split == "any" or (split == "train") != heldout


def sample_object(rng, split="train", position=None, exclude_colour=None, size=None) -> ShapeObject:
    """One object whose colour x shape pair belongs to `split` ("train", "heldout" or "any")."""
    colours = [c for c in COLOURS if c != exclude_colour]
    while True:
        colour = colours[int(rng.integers(len(colours)))]
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        if _combo_allowed(colour, shape, split):
            break
    position = position or POSITIONS[int(rng.integers(len(POSITIONS)))]
    size = size or SIZES[int(rng.integers(len(SIZES)))]
    return _place(rng, colour, shape, position, size)


def sample_scene(rng, n_objects: int | None = None, split: str = "train", p_two: float = 0.4) -> Scene:
    """A random scene. `rng` is a numpy Generator; `split` selects which colour x shape pairs may appear.

    For split="heldout" at least one object is a held-out pair (the other object, if any, may be anything).
    """
    if n_objects is None:
        n_objects = 2 if rng.random() < p_two else 1
    if n_objects == 1:
        return Scene((sample_object(rng, split),))
    if n_objects != 2:
        raise ValueError(f"A scene holds 1 or 2 objects, not {n_objects}.")
    pos_a, pos_b = PAIRED_POSITIONS[int(rng.integers(len(PAIRED_POSITIONS)))]
    if rng.random() < 0.5:
        pos_a, pos_b = pos_b, pos_a
    # Two-object scenes use large/small freely but keep objects apart: sizes at most "large" fit side by side.
    first = sample_object(rng, split, position=pos_a)
    second_split = "any" if split == "heldout" else split
    second = sample_object(rng, second_split, position=pos_b, exclude_colour=first.colour)
    return Scene((first, second))


def scene_from_seed(seed: int, split: str = "train", n_objects: int | None = None) -> Scene:
    import numpy as np

    return sample_scene(np.random.default_rng(seed), n_objects=n_objects, split=split)


def _polygon(obj: ShapeObject):
    r, cx, cy = obj.radius, obj.cx, obj.cy
    if obj.shape == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if obj.shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    raise ValueError(obj.shape)


def object_mask(obj: ShapeObject, size: int = IMAGE_SIZE):
    """Boolean (size, size) mask of the object alone."""
    import numpy as np
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    if obj.shape == "circle":
        draw.ellipse([obj.cx - obj.radius, obj.cy - obj.radius, obj.cx + obj.radius, obj.cy + obj.radius], fill=255)
    elif obj.shape in ("square", "triangle"):
        draw.polygon(_polygon(obj), fill=255)
    else:
        raise ValueError(f"Unknown shape {obj.shape!r}; the world has {SHAPES}.")
    return np.asarray(canvas) > 0


def render(scene: Scene, size: int = IMAGE_SIZE, palette=None):
    """(image uint8 (size, size, 3), masks bool (n_objects, size, size)); later objects are drawn on top.

    `palette` maps colour words to RGB (default: the world's COLOURS; CLIP training adds colours of its own)."""
    import numpy as np

    image = np.empty((size, size, 3), dtype=np.uint8)
    image[:] = BACKGROUND_RGB
    masks = []
    for obj in scene.objects:
        mask = object_mask(obj, size)
        image[mask] = (palette or COLOURS)[obj.colour]
        masks.append(mask)
    masks = np.stack(masks) if masks else np.zeros((0, size, size), dtype=bool)
    # A mask records what is visible: an object drawn later hides an earlier one.
    for i in range(len(masks) - 1):
        masks[i] &= ~masks[i + 1 :].any(axis=0)
    return image, masks
