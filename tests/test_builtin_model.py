"""The shipped built-in model `builtin:shapes` and its tiny CLIP: they load offline and behave."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.resources import resources_root


def _generate(pipe, prompt, seed, steps=4):
    result = pipe(prompt, num_inference_steps=steps, generator=torch.Generator().manual_seed(seed),
                  output_type="np", height=64, width=64)
    return result.images[0]


def test_builtin_loads_trained_weights_from_resources():
    from core.loading import load_model

    loaded = load_model("builtin:shapes")
    assert loaded.family == "builtin" and loaded.name == "builtin:shapes"
    assert loaded.details.get("trained") is True, "resources/builtin/shapes holds no trained weights"
    assert loaded.pipe.unet.dtype == torch.float32
    assert len(loaded.model_hash) == 64 and not loaded.model_hash.startswith("standin")


def test_builtin_architecture_has_cross_attention_at_three_resolutions(builtin_pipe):
    unet = builtin_pipe.unet
    cross = {name: m for name, m in unet.named_modules() if name.endswith("attn2")}
    assert len(cross) >= 6
    assert all(m.heads >= 4 for m in cross.values())
    resolutions = set()
    latents = torch.zeros(1, 4, 16, 16)
    hooks = [m.register_forward_hook(lambda mod, args, out: resolutions.add(args[0].shape[1])) for m in cross.values()]
    try:
        with torch.no_grad():
            unet(latents, 10, torch.zeros(1, 77, unet.config.cross_attention_dim))
    finally:
        for h in hooks:
            h.remove()
    assert resolutions == {256, 64, 16}  # 16x16, 8x8 and 4x4 query grids


def test_generation_is_64px_and_deterministic_for_a_seed(builtin_pipe):
    a = _generate(builtin_pipe, "a large red circle on the left", seed=5)
    b = _generate(builtin_pipe, "a large red circle on the left", seed=5)
    c = _generate(builtin_pipe, "a large red circle on the left", seed=6)
    assert a.shape == (64, 64, 3)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_trained_model_follows_colour_words_far_above_chance(builtin_pipe):
    """Six colours, so a model that ignores the colour word draws the asked one about 1 time in 6."""
    from core.shapes.checker import colour_mask

    prompts = [("red", "a large red square in the centre"), ("blue", "a large blue triangle in the centre"),
               ("green", "a large green circle in the centre"), ("yellow", "a large yellow circle in the centre"),
               ("purple", "a large purple square in the centre"), ("orange", "a large orange square in the centre")]
    drawn = [colour for colour, prompt in prompts
             if colour_mask((_generate(builtin_pipe, prompt, seed=1, steps=20) * 255).round().astype(np.uint8),
                            colour).sum() > 60]
    assert len(drawn) >= 3, f"only {drawn} of the requested colours were drawn"


def test_shipped_weights_fit_the_40_mb_budget():
    files = list((resources_root() / "builtin").rglob("*.safetensors"))
    assert {f.parent.name for f in files} >= {"unet", "vae", "text_encoder", "clip"}
    assert sum(f.stat().st_size for f in files) <= 40 * 1024 * 1024


@pytest.fixture(scope="module")
def tiny_clip():
    from core.builtin.tiny_clip import load_tiny_clip

    return load_tiny_clip()


def test_tiny_clip_loads_from_local_files_without_network(monkeypatch):
    import socket

    from PIL import Image

    from core.builtin.tiny_clip import load_tiny_clip

    def refuse(*args, **kwargs):
        raise AssertionError("the tiny CLIP tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    model, preprocess, tokenizer = load_tiny_clip()
    assert not model.training
    assert preprocess(Image.new("RGB", (64, 64))).shape == (3, 64, 64)
    assert tokenizer(["a red circle"]).shape == (1, 32)


def test_tiny_clip_prefers_the_true_caption_on_real_scenes(tiny_clip):
    from PIL import Image

    from core.shapes.captions import caption
    from core.shapes.scene import Scene, render, sample_scene

    model, preprocess, tokenizer = tiny_clip
    rng = np.random.default_rng(77)
    wins = 0
    n = 12
    with torch.no_grad():
        for _ in range(n):
            scene = sample_scene(rng, n_objects=1, split="train")
            obj = scene.objects[0]
            wrong_colour = next(c for c in ("red", "blue", "green") if c != obj.colour)
            from dataclasses import replace

            wrong = Scene((replace(obj, colour=wrong_colour),))
            image = preprocess(Image.fromarray(render(scene)[0])).unsqueeze(0)
            img = torch.nn.functional.normalize(model.encode_image(image), dim=-1)
            txt = torch.nn.functional.normalize(model.encode_text(tokenizer([caption(scene), caption(wrong)])), dim=-1)
            scores = (img @ txt.T)[0]
            wins += int(scores[0] > scores[1])
    assert wins >= n - 1


def test_missing_tiny_clip_weights_give_a_clear_error(tmp_path):
    from core.builtin.tiny_clip import load_tiny_clip
    from core.errors import HeadRoomError

    with pytest.raises(HeadRoomError, match="tiny CLIP weights"):
        load_tiny_clip(folder=tmp_path)
