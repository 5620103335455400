"""The built-in model's quality measurements: generation judged by the checker, pooled over prompt sets."""

import pytest

from core.builtin import evaluation


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    pass


def test_pooling_weights_every_prompt_once():
    from core.loading import load_model

    pipe = load_model("builtin:shapes").pipe
    results = {}
    for seed, (n_single, n_two) in ((1, (2, 1)), (2, (1, 0))):
        prompt_set = evaluation.heldout_prompt_set(n_single=n_single, n_two=n_two, seed=seed)
        results[seed], images = evaluation.evaluate_generation(pipe, prompt_set, steps=3, guidance=5.0)
        assert images.shape == (len(prompt_set), 64, 64, 3)
        assert results[seed]["n"] == len(prompt_set) and results[seed]["guidance"] == 5.0
    pooled = evaluation.pool_generation(results)
    rows = results[1]["rows"] + results[2]["rows"]
    assert pooled["n"] == 4
    assert pooled["colour_shape_accuracy"] == pytest.approx(sum(r["colour_shape_ok"] for r in rows) / 4)
    assert sum(k["n"] for k in pooled["by_kind"].values()) == 4
    single_train = [r for r in rows if r["kind"] == "single-object/train-phrasing"]
    assert pooled["by_kind"]["single-object/train-phrasing"]["colour_shape_accuracy"] == pytest.approx(
        sum(r["colour_shape_ok"] for r in single_train) / len(single_train))
    assert pooled["by_prompt_seed"] == {1: results[1]["colour_shape_accuracy"], 2: results[2]["colour_shape_accuracy"]}
