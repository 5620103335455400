"""Token grounding (training the built-in model): which tokens belong to which object, the loss, the recorder."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    pass


@pytest.fixture(scope="module")
def tokenizer():
    from core.builtin.architecture import build_components

    return build_components(0)["tokenizer"]


def test_owners_mark_each_objects_words_and_nothing_else(tokenizer):
    from core.builtin.attention_grounding import GroundingTargets

    phrases = ["on the left, a red circle", "a big blue square on the right side"]
    owners = GroundingTargets(tokenizer).owners(phrases)
    ids = tokenizer(" and ".join(phrases), padding="max_length", max_length=77).input_ids
    words = {tokenizer.convert_ids_to_tokens(i).removesuffix("</w>"): (i, o) for i, o in zip(ids, owners) if o >= 0}
    assert len(owners) == 77
    assert {w: o for w, (_, o) in words.items()} == {"left": 0, "red": 0, "circle": 0, "big": 1, "blue": 1,
                                                      "square": 1, "right": 1}
    assert owners[0] == -1 and owners[ids.index(537)] == -1  # BOS and the joining "and"


def test_dropped_caption_grounds_nothing(tokenizer):
    from core.builtin.attention_grounding import GroundingTargets

    owners = GroundingTargets(tokenizer)([[], ["a red circle"]])
    assert owners.shape == (2, 77)
    assert (owners[0] == -1).all() and (owners[1] >= 0).sum() == 2


def test_loss_is_zero_inside_the_mask_and_one_minus_area_when_uniform():
    from core.builtin.attention_grounding import grounding_loss

    side, tokens = 4, 5
    masks = torch.zeros(1, 2, side * side)
    masks[0, 0, :4] = 1.0  # object 0 covers a quarter of the cells
    owners = torch.full((1, tokens), -1)
    owners[0, 2] = 0
    focused = torch.full((1, side * side, tokens), 1.0 / tokens)
    focused[0, :, 2] = 0.0
    focused[0, :4, 2] = 1.0
    assert float(grounding_loss([focused], owners, {side: masks})) == pytest.approx(0.0, abs=1e-6)
    uniform = torch.full((1, side * side, tokens), 1.0 / tokens, requires_grad=True)
    loss = grounding_loss([uniform], owners, {side: masks})
    assert float(loss.detach()) == pytest.approx((1 - 0.25) ** 2)
    loss.backward()
    assert uniform.grad[0, 4:, 2].gt(0).all() and uniform.grad[0, :4, 2].lt(0).all()


def test_recorder_keeps_the_unets_output_and_restores_its_processors():
    from core.builtin.architecture import build_components
    from core.builtin.attention_grounding import recording_cross_attention

    unet = build_components(0)["unet"].eval()
    before = {n: type(m.processor) for n, m in unet.named_modules() if n.endswith("attn2")}
    sample, context = torch.randn(2, 4, 16, 16), torch.randn(2, 77, 64)
    with torch.no_grad():
        expected = unet(sample, 10, context).sample
        with recording_cross_attention(unet) as maps:
            got = unet(sample, 10, context).sample
    assert torch.allclose(got, expected, atol=1e-5)
    assert len(maps) == len(before) and {m.shape[1] for m in maps} == {256, 64, 16}
    assert all(torch.allclose(m.sum(-1), torch.ones(())) for m in maps)
    assert {n: type(m.processor) for n, m in unet.named_modules() if n.endswith("attn2")} == before


def test_training_with_grounding_moves_attention_towards_the_objects(tokenizer):
    """A few steps on one repeated batch: the grounding term falls; without it, the same steps leave it higher."""
    import numpy as np

    from core.builtin.architecture import build_components
    from core.builtin.attention_grounding import GroundingTargets, grounding_loss, recording_cross_attention, scene_masks
    from core.builtin.train_unet import prepare_text_encoder, train_unet_text
    from core.shapes.captions import caption
    from core.shapes.scene import sample_scene

    rng = np.random.default_rng(0)
    scenes = [sample_scene(rng, n_objects=1 + i % 2) for i in range(4)]
    phrases = [caption(s).split(" and ") for s in scenes]
    masks = scene_masks(scenes)

    def measure(unet, text):
        ids = torch.tensor(tokenizer([" and ".join(p) for p in phrases], padding="max_length", max_length=77).input_ids)
        with torch.no_grad(), recording_cross_attention(unet) as maps:
            unet(torch.randn(4, 4, 16, 16, generator=torch.Generator().manual_seed(1)), 500, text(ids)[0])
        return float(grounding_loss(maps, GroundingTargets(tokenizer)(phrases), masks))

    results = {}
    for weight in (0.0, 1.0):
        parts = build_components(0)
        text = prepare_text_encoder(parts["text_encoder"], seed=0, position_std=0.3)
        latents = torch.zeros(4, 4, 16, 16)
        ema_unet, ema_text = train_unet_text(parts["unet"], text, tokenizer, parts["scheduler"], latents,
                                             torch.ones_like(latents), scenes, 1.0, steps=25, seed=0, batch=4,
                                             warmup=1, caption_dropout=0.0, grounding_weight=weight)
        results[weight] = measure(parts["unet"].eval(), text.eval())
    assert results[1.0] < results[0.0] - 0.05, results
