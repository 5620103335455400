"""Quality metrics on known cases: identical images, an unrelated image, a local-weights CLIP."""

from __future__ import annotations

import numpy as np
import pytest
from quality_clip_helpers import TINY_CLIP_NAME, write_tiny_clip

from core.quality.images import difference_image, to_rgb_array
from core.quality.metrics import (
    ClipScorer,
    MetricUnavailableError,
    clip_scorer_for,
    lpips_availability,
    phash_distance,
    ssim,
)


def _scene(seed: int, size: int = 64) -> np.ndarray:
    """A smooth random scene: a few filled discs of random colours on a random background."""
    rng = np.random.default_rng(seed)
    image = np.empty((size, size, 3), np.uint8)
    image[:] = rng.integers(0, 256, 3)
    yy, xx = np.mgrid[:size, :size]
    for _ in range(3):
        cx, cy, r = rng.integers(8, size - 8), rng.integers(8, size - 8), rng.integers(5, 16)
        image[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.integers(0, 256, 3)
    return image


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    config, weights = write_tiny_clip(tmp_path_factory.mktemp("clip"))
    return ClipScorer.from_local_weights(TINY_CLIP_NAME, weights, config), config, weights


def test_identical_images_have_ssim_one_and_phash_zero():
    a = _scene(1)
    assert ssim(a, a.copy()) == pytest.approx(1.0)
    assert phash_distance(a, a.copy()) == 0


def test_unrelated_image_scores_worse_than_a_slightly_noisy_copy():
    a, unrelated = _scene(1), _scene(2)
    noisy = np.clip(a.astype(int) + np.random.default_rng(0).integers(-6, 7, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, noisy) < 1.0
    assert ssim(a, unrelated) < ssim(a, noisy)
    assert phash_distance(a, unrelated) > phash_distance(a, noisy)


def test_metrics_accept_pil_float_and_tensor_inputs_alike():
    import torch
    from PIL import Image

    a = _scene(3)
    as_float = a.astype(np.float32) / 255.0
    as_tensor = torch.from_numpy(as_float).permute(2, 0, 1)
    assert np.array_equal(to_rgb_array(Image.fromarray(a)), a)
    assert np.array_equal(to_rgb_array(as_tensor), a)
    assert ssim(Image.fromarray(a), as_float) == pytest.approx(1.0)


def test_images_of_different_sizes_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="same size"):
        ssim(_scene(1, 64), _scene(1, 32))


def test_difference_image_is_black_for_identical_and_bright_where_images_differ():
    a = _scene(4)
    assert difference_image(a, a).max() == 0
    b = a.copy()
    b[:10, :10] = 255 - b[:10, :10]
    diff = difference_image(a, b)
    assert diff[:10, :10].mean() > 0 and diff[20:, 20:].max() == 0


def test_clip_delta_is_zero_for_identical_images(tiny_clip):
    scorer, _, _ = tiny_clip
    images = [_scene(5), _scene(6)]
    prompts = ["a red circle", "a blue square"]
    base = scorer.score(images, prompts)
    again = scorer.score([im.copy() for im in images], prompts)
    assert base.shape == (2,)
    assert np.allclose(base - again, 0.0, atol=1e-4)
    # An unrelated image changes the score: the metric reads the pixels, it is not a constant.
    assert abs(scorer.score([_scene(7)], prompts[:1])[0] - base[0]) > 1e-3


def test_clip_score_of_an_image_does_not_depend_on_its_batch(tiny_clip):
    scorer, _, _ = tiny_clip
    images = [_scene(s) for s in range(5)]
    prompts = ["a red circle", "a blue square", "a red circle", "a green star", "a blue square"]
    together = scorer.score(images, prompts)
    alone = np.array([scorer.score([im], [p])[0] for im, p in zip(images, prompts)])
    assert np.allclose(together, alone, atol=1e-3)


def test_clip_loaded_from_a_local_file_matches_the_saved_model(tiny_clip, tmp_path):
    import torch

    scorer, config, weights = tiny_clip
    reloaded = ClipScorer.from_local_weights(TINY_CLIP_NAME, weights, config)
    image, prompt = _scene(8), "a small yellow circle"
    assert reloaded.score([image], [prompt])[0] == pytest.approx(scorer.score([image], [prompt])[0], abs=1e-4)
    # Different weights give a different score: the file really is what is loaded.
    state = torch.load(weights, weights_only=True)
    state = {k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v for k, v in state.items()}
    other = tmp_path / "other.pt"
    torch.save(state, other)
    changed = ClipScorer.from_local_weights(TINY_CLIP_NAME, other, config)
    assert changed.score([image], [prompt])[0] != pytest.approx(scorer.score([image], [prompt])[0], abs=1e-3)


def test_missing_clip_weights_are_unavailable_not_downloaded(tmp_path):
    with pytest.raises(MetricUnavailableError, match="never downloads"):
        ClipScorer.from_local_weights("ViT-B-32", tmp_path / "nope.pt")


def test_clip_for_a_real_model_without_weights_says_why():
    class FakeLoaded:
        family = "sd15"

    scorer, status = clip_scorer_for(FakeLoaded())
    assert scorer is None and not status.available
    assert "--clip-weights" in status.reason


def test_lpips_is_unavailable_without_a_local_backbone(tmp_path):
    status = lpips_availability(None)
    assert not status.available and "never downloads" in status.reason
    missing = lpips_availability(tmp_path / "alexnet.pth")
    assert not missing.available and "does not exist" in missing.reason


class _Builtin:
    family = "builtin"


def test_builtin_model_is_scored_with_the_shipped_tiny_clip(monkeypatch, tmp_path):
    from core.builtin import tiny_clip

    model, preprocess, tokenizer = tiny_clip.build_tiny_clip(seed=1)
    tiny_clip.save_tiny_clip(model, tmp_path)
    monkeypatch.setattr(tiny_clip, "clip_folder", lambda: tmp_path)
    scorer, status = clip_scorer_for(_Builtin())
    assert status.available and scorer.name == "builtin-tiny-clip"
    image, prompt = _scene(9), "a large red circle on the left"
    direct = ClipScorer(model, preprocess, tokenizer).score([image], [prompt])[0]
    assert scorer.score([image], [prompt])[0] == pytest.approx(direct, abs=0.1)  # saved in fp16


def test_builtin_model_without_tiny_clip_weights_says_why(monkeypatch, tmp_path):
    from core.builtin import tiny_clip

    monkeypatch.setattr(tiny_clip, "clip_folder", lambda: tmp_path)
    scorer, status = clip_scorer_for(_Builtin())
    assert scorer is None and not status.available
    assert "tiny CLIP" in status.reason and "missing" in status.reason


def _shipped_tiny_clip_present() -> bool:
    from core.builtin.tiny_clip import WEIGHTS_FILE, clip_folder

    return (clip_folder() / WEIGHTS_FILE).is_file()


@pytest.mark.skipif(not _shipped_tiny_clip_present(), reason="the trained tiny CLIP is not in resources/ yet")
def test_trained_tiny_clip_scores_an_unrelated_image_worse():
    from core.shapes.captions import caption
    from core.shapes.scene import render, scene_from_seed

    scorer, status = clip_scorer_for(_Builtin())
    assert status.available
    scenes = [scene_from_seed(seed, n_objects=1) for seed in range(12)]
    captions = [caption(scene) for scene in scenes]
    images = [render(scene)[0] for scene in scenes]
    own = scorer.score(images, captions)
    unrelated = scorer.score(images[1:] + images[:1], captions)  # each caption next to another scene's image
    assert (own > unrelated).mean() >= 0.9
    assert own.mean() - unrelated.mean() > 10.0
