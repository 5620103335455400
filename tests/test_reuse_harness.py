"""Paraphrase sets (generator and files) and the reuse-eval harness end to end on the built-in model, with a
fragment really profiled, extracted, cached, and reused from the cache on the second run."""

from __future__ import annotations

import json

import pytest

from core.reuse.paraphrases import ParaphraseFileError, read_paraphrase_file, sets_from_generator


def test_generator_sets_are_paraphrases_of_one_scene_and_reproducible():
    sets = sets_from_generator(4, per_set=3, seed=7)
    assert len(sets) == 4 and len({s.prompt for s in sets}) == 4
    assert sets == sets_from_generator(4, per_set=3, seed=7)
    from core.shapes.world import COLOURS, SHAPES

    for s in sets:
        assert len(s.paraphrases) == 3 and s.prompt not in s.paraphrases
        colour = next(c for c in COLOURS if c in s.prompt)
        shape = next(sh for sh in SHAPES if sh in s.prompt)
        assert all(colour in p and shape in p for p in s.paraphrases)  # same object, other words


def test_paraphrase_files_json_and_text(tmp_path):
    js = tmp_path / "sets.json"
    js.write_text(json.dumps({"sets": [{"prompt": "a red circle", "paraphrases": ["a circle coloured red"],
                                        "fragment": "frag"}]}))
    [one] = read_paraphrase_file(js)
    assert one.paraphrases == ["a circle coloured red"] and one.fragment == str((tmp_path / "frag").resolve())
    txt = tmp_path / "sets.txt"
    txt.write_text("# two sets\na red circle\na circle coloured red\n\n\na blue square\nblue square\nsquare, blue\n")
    sets = read_paraphrase_file(txt)
    assert [(s.prompt, s.paraphrases) for s in sets] == [
        ("a red circle", ["a circle coloured red"]), ("a blue square", ["blue square", "square, blue"])]
    bad = tmp_path / "bad.txt"
    bad.write_text("only a prompt\n")
    with pytest.raises(ParaphraseFileError, match="no paraphrases"):
        read_paraphrase_file(bad)
    with pytest.raises(ParaphraseFileError, match="needs a \"prompt\""):
        (tmp_path / "b.json").write_text('[{"paraphrases": []}]')
        read_paraphrase_file(tmp_path / "b.json")


def test_harness_extracts_caches_and_reuses_a_real_fragment(builtin_pipe, tmp_path):
    from core.cache import FragmentCache
    from core.loading.model import LoadedModel
    from core.reuse.harness import HarnessConfig, run_reuse_eval
    from core.reuse.paraphrases import ParaphraseSet
    from core.reuse.validate import ReuseTolerance, ValidationSettings

    base = LoadedModel(builtin_pipe, "builtin", "builtin:shapes", "test-base-hash", "builtin")
    sets = [ParaphraseSet("a red circle on the left", ["on the left, a red circle"])]
    config = HarnessConfig(validation=ValidationSettings(seeds=(0,), steps=2, tolerance=ReuseTolerance(0.5, 0.05)),
                           profile_seeds=(0,), profile_steps=2, prune_percentile=25.0, threshold=0.5)
    cache = FragmentCache(tmp_path / "cache")
    report = run_reuse_eval(base, sets, cache, config)
    [set_report] = report["sets"]
    assert set_report["fragment_origin"] == "extracted"
    entry = cache.entry(set_report["entry_id"])
    assert entry.prompts == ["a red circle on the left"]
    manifest = json.loads((entry.path / "manifest.json").read_text())
    assert manifest["base_model"]["hash"] == "test-base-hash"
    assert manifest["pruning"]["heads_kept"] < manifest["pruning"]["heads_total"]  # a real, smaller fragment
    [row] = set_report["paraphrases"]
    assert 0.0 < row["ssim_mean"] <= 1.0 and row["passed"] == (row["ssim_mean"] >= 0.5)
    assert report["paraphrases_tested"] == 1 and report["paraphrase_pass_rate"] == float(row["passed"])
    assert row["lookup_hit"] and row["routed_to_own_fragment"]  # one fragment, threshold 0.5
    assert report["cache_hit_rate_logged"]["lookups"] == 2  # the original and its paraphrase

    from core.reuse.harness import fragment_for_set

    again, origin = fragment_for_set(cache, base, sets[0], config)  # the same set again: no new extraction
    assert origin == "cached" and again.id == entry.id and len(cache.entries()) == 1
