"""Reuse lookup with the built-in model's own text encoder over a real cache; hit/miss reasons; hit rate."""

from __future__ import annotations

import numpy as np
import pytest

from core.cache import CacheKey, FragmentCache
from core.reuse import PromptEmbedder, find_fragment

BASE = "base-model-hash"


@pytest.fixture(scope="module")
def embedder(builtin_pipe):
    return PromptEmbedder(builtin_pipe, BASE)


def put_fragment(cache, tmp_path, name, prompts, base=BASE, reduction=None):
    folder = tmp_path / "src" / name
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text('{"name": "%s"}' % name)
    reduction = reduction or {"heads": 0.5}
    return cache.put(CacheKey.make(base, reduction, prompts), folder, prompts, reduction=reduction, name=name)


def test_embeddings_are_unit_vectors_of_the_encoder_width(builtin_pipe, embedder):
    vectors = embedder(["a red circle", "a blue square on the left", "a red circle"])
    assert vectors.shape == (3, builtin_pipe.text_encoder.config.hidden_size)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[0], vectors[2])
    assert vectors[0] @ vectors[1] < 0.9999
    pooled = PromptEmbedder(builtin_pipe, BASE, pooling="pooled")
    assert pooled.encoder_id != embedder.encoder_id
    assert not np.allclose(pooled(["a red circle"])[0], vectors[0])


def test_mean_pooling_ignores_padding_and_the_start_token(builtin_pipe, embedder):
    import torch

    tok = builtin_pipe.tokenizer(["a red circle"], padding="max_length", max_length=77, return_tensors="pt")
    with torch.inference_mode():
        hidden = builtin_pipe.text_encoder(tok.input_ids).last_hidden_state[0]
    n_words = len(builtin_pipe.tokenizer("a red circle").input_ids) - 2
    expected = hidden[1 : n_words + 2].mean(0)  # words + end-of-text token
    expected = (expected / expected.norm()).numpy()
    raw = PromptEmbedder(builtin_pipe, BASE, centre=False)
    assert np.allclose(raw(["a red circle"])[0], expected, atol=1e-5)
    # centred: the empty prompt's vector (shared by every prompt) is taken out before normalising
    centred = expected - raw([""])[0]
    assert np.allclose(embedder(["a red circle"])[0], centred / np.linalg.norm(centred), atol=1e-5)
    assert raw.encoder_id != embedder.encoder_id


def test_lookup_finds_the_fragment_that_profiled_the_prompt(tmp_path, embedder):
    cache = FragmentCache(tmp_path / "c")
    assert "no cached fragment" in find_fragment(cache, embedder, "a red circle", BASE).reason
    put_fragment(cache, tmp_path, "circles", ["a red circle", "a small red circle at the top"])
    squares = put_fragment(cache, tmp_path, "squares", ["a blue square on the left", "a green square"])
    put_fragment(cache, tmp_path, "other-model", ["a green square"], base="another-base")

    result = find_fragment(cache, embedder, "A green  square", BASE, threshold=0.99)
    assert result.hit and result.entry.id == squares.id
    assert result.matched_prompt == "a green square" and result.similarity == pytest.approx(1.0, abs=1e-4)
    assert result.candidates == 2  # the other base model's fragment is never a candidate
    assert "hit: 1.000 similar to profiled prompt 'a green square' of fragment 'squares'" in result.reason

    strict = find_fragment(cache, embedder, "a purple triangle at the bottom", BASE, threshold=0.9999)
    assert not strict.hit and "below the threshold 1.00" in strict.reason and strict.entry is not None
    assert cache.hit_rate() == (1, 3)


def test_lookup_can_be_limited_to_one_reduction_setting(tmp_path, embedder):
    cache = FragmentCache(tmp_path / "c")
    put_fragment(cache, tmp_path, "light", ["a red circle"], reduction={"heads": 0.25})
    heavy = put_fragment(cache, tmp_path, "heavy", ["a red square"], reduction={"heads": 0.75})
    result = find_fragment(cache, embedder, "a red circle", BASE, threshold=0.5,
                           reduction_fp=heavy.key.reduction_fp)
    assert result.entry.id == heavy.id
    none = find_fragment(cache, embedder, "a red circle", BASE, reduction_fp="nothing-made-this")
    assert not none.hit and "reduction setting" in none.reason


def test_lookup_among_many_entries_picks_the_true_owner(tmp_path, embedder):
    cache = FragmentCache(tmp_path / "c")
    rng = np.random.default_rng(0)
    entries = [put_fragment(cache, tmp_path, f"f{i}", [f"prompt number {i}"]) for i in range(150)]
    for entry in entries[:-1]:  # random directions for all but one: the lookup must not be fooled
        vector = rng.normal(size=(1, embedder.dim)).astype(np.float32)
        cache.set_embeddings(entry.id, embedder.encoder_id, vector / np.linalg.norm(vector))
    owner = put_fragment(cache, tmp_path, "owner", ["a large yellow triangle in the centre"])
    result = find_fragment(cache, embedder, "a large yellow triangle in the centre", BASE)
    assert result.hit and result.entry.id == owner.id and result.candidates == 151


def test_lookup_sees_entries_added_by_another_connection(tmp_path, embedder):
    """Lookups keep the embeddings in memory; a fragment cached by another process must still be found."""
    mine = FragmentCache(tmp_path / "c")
    put_fragment(mine, tmp_path, "first", ["a red circle"])
    assert find_fragment(mine, embedder, "a red circle", BASE).entry.name == "first"
    other = FragmentCache(tmp_path / "c")  # its own connection, as another process has
    put_fragment(other, tmp_path, "second", ["a blue square at the bottom"])
    found = find_fragment(mine, embedder, "a blue square at the bottom", BASE, threshold=0.999)
    assert found.hit and found.entry.name == "second"
    other.remove(found.entry.id)
    assert find_fragment(mine, embedder, "a blue square at the bottom", BASE).entry.name == "first"


def test_clip_similarity_needs_a_scorer_and_finds_profiled_prompts(builtin_pipe, tmp_path):
    from core.errors import HeadRoomError
    from core.loading.model import LoadedModel
    from core.reuse import make_embedder

    base = LoadedModel(builtin_pipe, "builtin", "builtin:shapes", BASE, "builtin")
    with pytest.raises(HeadRoomError, match="needs a CLIP model"):
        make_embedder(base, "clip", None)
    from core.quality.metrics import clip_scorer_for

    scorer, status = clip_scorer_for(base)
    if scorer is None:
        pytest.skip(f"no tiny CLIP in this checkout: {status.reason}")
    clip = make_embedder(base, "clip", scorer)
    vectors = clip(["a red circle", "a blue square"])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4) and vectors.shape[1] == clip.dim
    cache = FragmentCache(tmp_path / "c")
    put_fragment(cache, tmp_path, "circles", ["a red circle on the left"])
    squares = put_fragment(cache, tmp_path, "squares", ["a blue square at the top"])
    found = find_fragment(cache, clip, "a blue square at the top", BASE, threshold=0.99)
    assert found.hit and found.entry.id == squares.id
