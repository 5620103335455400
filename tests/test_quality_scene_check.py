"""Scene-checker accuracy for the built-in model's prompts, on rendered (known-correct) scenes."""

from __future__ import annotations

from core.quality.evaluate import quality_of_images
from core.quality.metrics import Availability
from core.quality.scene_check import builtin_prompt_scenes, scene_checks, scene_from_prompt


def test_prompts_in_the_shapes_vocabulary_become_scenes():
    scene = scene_from_prompt("a large red circle on the left and a small blue square on the right")
    assert [(o.colour, o.shape, o.position, o.size) for o in scene.objects] == [
        ("red", "circle", "left", "large"), ("blue", "square", "right", "small")]
    assert scene_from_prompt("in the middle, a little triangle coloured orange").objects[0].shape == "triangle"
    assert scene_from_prompt("a photo of a cat") is None
    assert scene_from_prompt("a red and blue circle") is None  # two colours for one object: ambiguous


def test_rendered_scenes_pass_and_mismatched_ones_fail():
    from core.shapes.scene import render

    prompts, scenes = builtin_prompt_scenes()
    assert [scene_from_prompt(p).objects[0].colour for p in prompts] == [s.objects[0].colour for s in scenes]
    images = [render(scene)[0] for scene in scenes]
    assert scene_checks(images, scenes) == [True] * len(scenes)
    assert scene_checks(images[::-1], scenes) == [False] * len(scenes)


def test_checker_accuracy_in_the_quality_summary_skips_unjudged_prompts():
    from core.shapes.scene import render

    prompts, scenes = builtin_prompt_scenes()
    images = [render(scene)[0] for scene in scenes]
    wrong = images[1:] + images[:1]  # every fragment image shows another scene
    per_image_scenes = list(scenes[:-1]) + [None]  # the last prompt is not judged
    samples, _, quality = quality_of_images(prompts, images, wrong, None, Availability(False, "none"),
                                            [0] * len(prompts), per_image_scenes)
    assert quality["checker_samples"] == len(prompts) - 1
    assert quality["checker_accuracy_base"] == 1.0
    assert quality["checker_accuracy_fragment"] == 0.0
    assert samples[-1]["scene_ok_base"] is None
