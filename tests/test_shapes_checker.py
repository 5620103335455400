"""The rule-based scikit-image checker must judge real scene images correctly."""

from __future__ import annotations

import numpy as np

from core.shapes.captions import alternative_scenes
from core.shapes.checker import check_image, colour_mask, detect_objects
from core.shapes.scene import render, sample_scene
from core.shapes.world import BACKGROUND_RGB


def test_checker_reads_every_attribute_of_ground_truth_scenes():
    rng = np.random.default_rng(21)
    for _ in range(120):
        scene = sample_scene(rng, split="any")
        image, _ = render(scene)
        detected = detect_objects(image)
        got = sorted((d.colour, d.shape, d.position, d.size) for d in detected)
        want = sorted((o.colour, o.shape, o.position, o.size) for o in scene.objects)
        assert got == want
        verdict = check_image(image, scene)
        assert verdict.colour_shape_ok and verdict.position_ok


def test_checker_rejects_scenes_that_differ_in_colour_shape_or_position():
    rng = np.random.default_rng(22)
    for _ in range(20):
        scene = sample_scene(rng, n_objects=1, split="any")
        image, _ = render(scene)
        for other in alternative_scenes(scene):
            verdict = check_image(image, other)
            if other.objects[0].position != scene.objects[0].position:
                assert verdict.colour_shape_ok and not verdict.position_ok
            else:
                assert not verdict.colour_shape_ok


def test_extra_or_missing_objects_are_wrong():
    rng = np.random.default_rng(23)
    two = sample_scene(rng, n_objects=2, split="any")
    image, _ = render(two)
    from core.shapes.scene import Scene

    assert not check_image(image, Scene(two.objects[:1])).colour_shape_ok  # an extra object is drawn
    blank = np.full((64, 64, 3), BACKGROUND_RGB, dtype=np.uint8)
    assert detect_objects(blank) == []
    assert not check_image(blank, two).colour_shape_ok


def test_checker_tolerates_noise_blur_and_a_larger_image():
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(24)
    correct = 0
    n = 60
    for _ in range(n):
        scene = sample_scene(rng, split="any")
        image, _ = render(scene)
        pil = Image.fromarray(image).resize((128, 128), Image.BILINEAR).filter(ImageFilter.GaussianBlur(1.0))
        noisy = np.clip(np.asarray(pil).astype(float) + rng.normal(0, 6, (128, 128, 3)), 0, 255).astype(np.uint8)
        correct += check_image(noisy, scene).colour_shape_ok
    assert correct >= 0.95 * n


def test_colour_mask_covers_the_object():
    scene = sample_scene(np.random.default_rng(25), n_objects=1, split="any")
    image, masks = render(scene)
    mask = colour_mask(image, scene.objects[0].colour)
    overlap = (mask & masks[0]).sum() / masks[0].sum()
    assert overlap > 0.9 and (mask & ~masks[0]).sum() < 0.1 * masks[0].sum()
