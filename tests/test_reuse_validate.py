"""Quick validation and the reuse decision on the built-in model, with fragments that really differ from the
base: the base UNet with its attention output weights perturbed by a seeded, recorded amount."""

from __future__ import annotations

import copy
import json

from core.cache import CacheKey, FragmentCache
from core.reuse import PromptEmbedder, ReuseConfig, ReuseTolerance, ValidationSettings, reuse_fragment
from core.reuse.validate import quick_validate

BASE = "base-hash"
FAST = ValidationSettings(seeds=(0, 1), steps=2, tolerance=ReuseTolerance(ssim_min=0.8))


class Base:
    def __init__(self, pipe):
        self.pipe, self.model_hash, self.name = pipe, BASE, "builtin:shapes"


def perturbed_pipe(base, fragment_dir):
    """Loads a test fragment: {"scale": s, "seed": k} says how much noise (relative to each weight's spread) to
    add to every UNet weight matrix."""
    import torch

    spec = json.loads((fragment_dir / "perturb.json").read_text())
    pipe = base.pipe
    components = dict(pipe.components)
    unet = copy.deepcopy(pipe.unet)
    gen = torch.Generator().manual_seed(spec["seed"])
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if name.endswith("weight") and param.ndim > 1:
                param.add_(spec["scale"] * param.std() * torch.randn(param.shape, generator=gen))
    components["unet"] = unet
    clone = type(pipe)(**components)
    clone.set_progress_bar_config(disable=True)
    return clone


def make_fragment(tmp_path, name, scale):
    folder = tmp_path / "src" / name
    folder.mkdir(parents=True)
    (folder / "perturb.json").write_text(json.dumps({"scale": scale, "seed": 1}))
    return folder


def test_quick_validation_passes_a_faithful_fragment_and_fails_a_broken_one(builtin_pipe, tmp_path):
    from core.reuse.validate import images_for

    base = Base(builtin_pipe)
    base_images = images_for(builtin_pipe, "a red circle", FAST)
    close = quick_validate(builtin_pipe, perturbed_pipe(base, make_fragment(tmp_path, "close", 0.01)),
                           "a red circle", FAST, base_images=base_images)
    broken = quick_validate(builtin_pipe, perturbed_pipe(base, make_fragment(tmp_path, "broken", 3.0)),
                            "a red circle", FAST, base_images=base_images)
    assert close.passed and close.ssim_mean > 0.8 and close.reason.startswith("passed: SSIM")
    assert not broken.passed and broken.ssim_mean < close.ssim_mean
    assert "SSIM" in broken.reason and "< 0.80" in broken.reason
    assert not close.clip_available and "CLIP not available" in close.reason


def test_reuse_decision_hit_validation_miss_and_damage(builtin_pipe, tmp_path):
    cache = FragmentCache(tmp_path / "c")
    embedder = PromptEmbedder(builtin_pipe, BASE)
    base = Base(builtin_pipe)
    good = cache.put(CacheKey.make(BASE, {"h": 1}, ["a red circle"]), make_fragment(tmp_path, "good", 0.01),
                     ["a red circle"], name="good")
    cache.put(CacheKey.make(BASE, {"h": 1}, ["a blue square"]), make_fragment(tmp_path, "bad", 3.0),
              ["a blue square"], name="bad")
    one_seed = ValidationSettings(seeds=(0,), steps=2, tolerance=FAST.tolerance)
    config = ReuseConfig(threshold=0.99, validation=one_seed)

    hit = reuse_fragment(cache, base, "a red circle", embedder, config, loader=perturbed_pipe)
    assert hit.hit and hit.lookup.entry.id == good.id and "validation passed" in hit.reason

    rejected = reuse_fragment(cache, base, "a blue square", embedder, config, loader=perturbed_pipe)
    assert not rejected.hit and "was close" in rejected.reason and "SSIM" in rejected.reason

    far = reuse_fragment(cache, base, "a purple triangle at the bottom", embedder, config, loader=perturbed_pipe)
    assert not far.hit and far.validation is None and "below the threshold" in far.reason

    (good.path / "perturb.json").write_text('{"scale": 0.01, "seed": 2}')  # damaged on disk
    damaged = reuse_fragment(cache, base, "a red circle", embedder, config, loader=perturbed_pipe)
    assert not damaged.hit and "could not be used" in damaged.reason and "damaged" in damaged.reason
    assert not cache.leased(good.id)
    assert cache.hit_rate() == (1, 4)
