"""The shapes world: seeded scenes, captions, masks, held-out split, paraphrases."""

from __future__ import annotations

import numpy as np
import pytest

from core.shapes.captions import (
    HELDOUT_TEMPLATES,
    TRAIN_TEMPLATES,
    alternative_scenes,
    alternatives,
    caption,
    paraphrases,
    random_caption,
)
from core.shapes.scene import render, sample_scene, scene_from_seed
from core.shapes.world import COLOURS, HELDOUT_COMBOS, POSITION_CENTRES, SHAPES, is_heldout_combo


def test_same_seed_same_scene_and_pixels_different_seed_differs():
    a, b = scene_from_seed(11), scene_from_seed(11)
    assert a == b
    image_a, masks_a = render(a)
    image_b, masks_b = render(b)
    assert np.array_equal(image_a, image_b) and np.array_equal(masks_a, masks_b)
    others = [render(scene_from_seed(s))[0] for s in range(12, 20)]
    assert not any(np.array_equal(image_a, o) for o in others)


def test_world_has_required_vocabulary():
    assert {"red", "green", "blue", "yellow"} <= set(COLOURS) and len(COLOURS) >= 6
    assert set(SHAPES) >= {"circle", "square", "triangle"}
    assert set(POSITION_CENTRES) == {"left", "right", "top", "bottom", "centre"}


def test_masks_match_objects_colour_and_position():
    rng = np.random.default_rng(3)
    for _ in range(150):
        scene = sample_scene(rng, split="any")
        image, masks = render(scene)
        assert masks.shape == (len(scene.objects), 64, 64)
        for obj, mask in zip(scene.objects, masks):
            assert mask.sum() > 60, obj
            assert (image[mask] == COLOURS[obj.colour]).all()
            ys, xs = np.nonzero(mask)
            nearest = min(POSITION_CENTRES, key=lambda p: (POSITION_CENTRES[p][0] - xs.mean()) ** 2
                          + (POSITION_CENTRES[p][1] - ys.mean()) ** 2)
            assert nearest == obj.position
        background = ~masks.any(axis=0)
        assert (image[background] == image[0, 0]).all()
        if len(scene.objects) == 2:
            assert not (masks[0] & masks[1]).any()
            assert scene.objects[0].colour != scene.objects[1].colour


def test_large_objects_are_larger_than_small_ones():
    rng = np.random.default_rng(4)
    areas = {"small": [], "large": []}
    for _ in range(100):
        scene = sample_scene(rng, n_objects=1, split="any")
        areas[scene.objects[0].size].append(render(scene)[1][0].sum())
    assert max(areas["small"]) < min(areas["large"]) * 1.2
    assert np.mean(areas["small"]) * 2 < np.mean(areas["large"])


def test_captions_name_every_attribute():
    rng = np.random.default_rng(5)
    for _ in range(100):
        scene = sample_scene(rng, split="any")
        text = caption(scene)
        for obj in scene.objects:
            assert obj.colour in text and obj.shape in text and obj.size in text
        words = {"left": "left", "right": "right", "top": "top", "bottom": "bottom", "centre": "centre"}
        assert all(words[o.position] in text for o in scene.objects)


def test_training_split_never_draws_heldout_combos_and_heldout_split_always_does():
    rng = np.random.default_rng(6)
    seen = set()
    for _ in range(600):
        scene = sample_scene(rng, split="train")
        for obj in scene.objects:
            assert not is_heldout_combo(obj.colour, obj.shape)
            seen.add((obj.colour, obj.shape))
    assert len(seen) == len(COLOURS) * len(SHAPES) - len(HELDOUT_COMBOS)
    for _ in range(100):
        scene = sample_scene(rng, split="heldout")
        assert is_heldout_combo(scene.objects[0].colour, scene.objects[0].shape)


def test_heldout_phrasings_are_new_word_orders_of_known_words():
    assert not set(HELDOUT_TEMPLATES) & set(TRAIN_TEMPLATES)
    scene = scene_from_seed(8, n_objects=1)
    train_texts = set(paraphrases(scene, "train"))
    heldout_texts = paraphrases(scene, "heldout")
    assert heldout_texts and not train_texts & set(heldout_texts)
    train_words = {w.strip(",") for t in train_texts for w in t.split()}
    heldout_words = {w.strip(",") for t in heldout_texts for w in t.split()}
    assert heldout_words - train_words <= {"there", "is"}
    rng = np.random.default_rng(0)
    assert all(random_caption(scene, rng, "heldout") in heldout_texts for _ in range(20))


def test_paraphrases_are_distinct_and_keep_colour_and_shape():
    scene = scene_from_seed(9, n_objects=2)
    texts = paraphrases(scene)
    assert len(texts) == len(set(texts)) >= 10
    for text in texts:
        for obj in scene.objects:
            assert obj.colour in text and obj.shape in text


def test_orange_takes_the_article_an():
    from core.shapes.scene import Scene, ShapeObject

    scene = Scene((ShapeObject("orange", "circle", "left", "small", 17, 32, 8),))
    assert caption(scene) == "a small orange circle on the left"
    texts = paraphrases(scene)
    assert "an orange circle on the left" in texts
    assert not any(t.startswith("a orange") or " a orange" in t for t in texts)


def test_alternatives_change_exactly_one_attribute():
    scene = scene_from_seed(10, n_objects=1)
    true_caption = caption(scene)
    texts = alternatives(scene)
    assert true_caption not in texts and len(texts) == len(set(texts))
    for other in alternative_scenes(scene):
        a, b = scene.objects[0], other.objects[0]
        changed = [f for f in ("colour", "shape", "position") if getattr(a, f) != getattr(b, f)]
        assert len(changed) == 1


def test_two_object_scene_rejects_other_counts():
    with pytest.raises(ValueError, match="1 or 2 objects"):
        sample_scene(np.random.default_rng(0), n_objects=3)
