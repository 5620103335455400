"""Captions and paraphrases of a scene. Some phrasings are held out of training to test generalisation.

A template is a function of one object (its colour, shape, position, size words); two-object captions join
two object phrases with "and". Held-out templates reuse words seen in training but in new word orders.
"""

from __future__ import annotations

import re

POSITION_PHRASES = {
    "left": ("on the left", "on the left side"),
    "right": ("on the right", "on the right side"),
    "top": ("at the top", "near the top"),
    "bottom": ("at the bottom", "near the bottom"),
    "centre": ("in the centre", "in the middle"),
}
SIZE_WORDS = {"small": ("small", "little"), "large": ("large", "big")}

# Object templates. {c} colour, {s} shape, {p} position phrase, {z} size word.
TRAIN_TEMPLATES = (
    "a {c} {s} {p}",
    "a {z} {c} {s} {p}",
    "{p}, a {c} {s}",
    "{p}, a {z} {c} {s}",
    "a {s} coloured {c} {p}",
    "a {c} {s}",
    "a {z} {c} {s}",
    "{c} {s} {p}",
)
HELDOUT_TEMPLATES = (
    "{p}, a {s} coloured {c}",
    "a {z} {s} coloured {c} {p}",
    "{p} there is a {c} {s}",
)
CANONICAL_TEMPLATE = "a {z} {c} {s} {p}"
OBJECT_JOINER = " and "  # between the object phrases of a two-object caption
_ARTICLE_BEFORE_VOWEL = re.compile(r"(^|\s)a ([aeiou])")


def _fill(template: str, obj, variant: int = 0) -> str:
    p_options = POSITION_PHRASES[obj.position]
    z_options = SIZE_WORDS[obj.size]
    text = template.format(
        c=obj.colour, s=obj.shape, p=p_options[variant % len(p_options)], z=z_options[variant % len(z_options)]
    )
    return _ARTICLE_BEFORE_VOWEL.sub(r"\1an \2", text)


def object_phrase(obj, template: str = CANONICAL_TEMPLATE, variant: int = 0) -> str:
    return _fill(template, obj, variant)


def caption(scene, template: str = CANONICAL_TEMPLATE, variant: int = 0) -> str:
    """The caption of `scene` with one template for every object (canonical by default)."""
    return OBJECT_JOINER.join(_fill(template, obj, variant) for obj in scene.objects)


def random_object_phrases(scene, rng, split: str = "train") -> list[str]:
    """One phrase per object, each with a template from `split` ("train" or "heldout") drawn independently."""
    templates = TRAIN_TEMPLATES if split == "train" else HELDOUT_TEMPLATES
    parts = []
    for obj in scene.objects:
        template = templates[int(rng.integers(len(templates)))]
        parts.append(_fill(template, obj, int(rng.integers(2))))
    return parts


def random_caption(scene, rng, split: str = "train") -> str:
    """A caption with a template from `split` ("train" or "heldout") drawn independently per object."""
    return OBJECT_JOINER.join(random_object_phrases(scene, rng, split))


def paraphrases(scene, split: str = "all") -> list[str]:
    """Distinct captions of the same scene, every template x word variant of `split` ("train", "heldout", "all")."""
    templates = {
        "train": TRAIN_TEMPLATES,
        "heldout": HELDOUT_TEMPLATES,
        "all": TRAIN_TEMPLATES + HELDOUT_TEMPLATES,
    }[split]
    out: list[str] = []
    for template in templates:
        for variant in (0, 1):
            text = OBJECT_JOINER.join(_fill(template, obj, variant) for obj in scene.objects)
            if text not in out:
                out.append(text)
    return out


def alternative_scenes(scene) -> list:
    """Scenes that differ from `scene` in exactly one attribute (colour, shape or position) of one object."""
    from dataclasses import replace

    from core.shapes.scene import Scene
    from core.shapes.world import COLOURS, POSITIONS, SHAPES

    out = []
    taken_positions = {o.position for o in scene.objects}
    taken_colours = {o.colour for o in scene.objects}
    for i, obj in enumerate(scene.objects):
        options = (
            [replace(obj, colour=c) for c in COLOURS if c not in taken_colours]
            + [replace(obj, shape=s) for s in SHAPES if s != obj.shape]
            + [replace(obj, position=p) for p in POSITIONS if p not in taken_positions]
        )
        for changed in options:
            objects = list(scene.objects)
            objects[i] = changed
            out.append(Scene(tuple(objects)))
    return out


def alternatives(scene, template: str = CANONICAL_TEMPLATE, variant: int = 0) -> list[str]:
    """Captions (same template) of every alternative scene, without duplicates or the true caption.

    Used to test whether a scorer (the tiny CLIP) ranks the true caption above near misses.
    """
    true_caption = caption(scene, template, variant)
    out: list[str] = []
    for other in alternative_scenes(scene):
        text = caption(other, template, variant)
        if text != true_caption and text not in out:
            out.append(text)
    return out
