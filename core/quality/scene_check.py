"""Scene-checker accuracy for the built-in model: a prompt in the shapes world's words ("a large red circle on
the left and a small blue square on the right") names the objects to draw, so the scikit-image checker
(core.shapes.checker) can say whether each image shows exactly the requested colour x shape objects.
Prompts that do not name a colour and a shape for every object have no reference and are not judged."""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_SCENE_SEEDS = (11, 12, 13, 14)


def builtin_prompt_scenes(seeds: Sequence[int] = DEFAULT_SCENE_SEEDS) -> tuple[list[str], list]:
    """(prompts, scenes): canonical captions of single-object scenes drawn from the training split."""
    from core.shapes.captions import caption
    from core.shapes.scene import scene_from_seed

    scenes = [scene_from_seed(int(s), split="train", n_objects=1) for s in seeds]
    return [caption(scene) for scene in scenes], scenes


_POSITION_WORDS = {"left": "left", "right": "right", "top": "top", "bottom": "bottom", "centre": "centre",
                   "center": "centre", "middle": "centre"}
_SIZE_WORDS = {"small": "small", "little": "small", "large": "large", "big": "large"}


def scene_from_prompt(prompt: str):
    """The Scene a shapes-world prompt asks for (objects joined by "and"), or None when any part does not name
    exactly one colour and one shape. Position and size default to centre / large (the checker's colour x
    shape verdict does not use them)."""
    import re

    from core.shapes.scene import Scene, ShapeObject
    from core.shapes.world import COLOURS, SHAPES

    objects = []
    for part in re.split(r"\band\b", prompt.lower()):
        words = re.findall(r"[a-z]+", part)
        colours = [w for w in words if w in COLOURS]
        shapes = [w for w in words if w in SHAPES]
        if len(colours) != 1 or len(shapes) != 1:
            return None
        position = next((_POSITION_WORDS[w] for w in words if w in _POSITION_WORDS), "centre")
        size = next((_SIZE_WORDS[w] for w in words if w in _SIZE_WORDS), "large")
        objects.append(ShapeObject(colours[0], shapes[0], position, size))
    return Scene(tuple(objects)) if objects else None


def scene_checks(images, scenes: Sequence) -> list:
    """One bool per image: the requested colour x shape objects are there and nothing else."""
    from core.quality.images import to_rgb_array
    from core.shapes.checker import check_image

    return [bool(check_image(to_rgb_array(image), scene).colour_shape_ok) for image, scene in zip(images, scenes)]


def accuracy(flags) -> float | None:
    flags = list(flags)
    return sum(flags) / len(flags) if flags else None
