"""Scores, selection rules and the fast estimate (checked against real surgery)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.pruning.scores import HeadScores, ScoringError, compute_head_scores
from core.pruning.selection import PruneConfig, SelectionError, estimate, select_heads
from core.pruning.structure import UnetStructure, attention_modules
from core.pruning.surgery import prune_heads
from core.pruning.tiny import tiny_unet


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    pass



class FakeProfile:
    """Same interface as core.profiling.Profile (head_stat / ffn_stat / meta), with chosen numbers."""

    def __init__(self, energy: dict, mass: dict | None = None):
        self.energy, self.mass, self.meta = energy, mass or {}, {"prompts": ["p"], "seeds": [0]}

    def head_stat(self, stat="energy", half="cond"):
        table = {"energy": self.energy, "token_mass": self.mass}
        return {k: torch.tensor(v, dtype=torch.float32) for k, v in table[stat].items()}


@pytest.fixture(scope="module")
def sdxl_unet():
    return tiny_unet("sdxl", seed=0)


@pytest.fixture(scope="module")
def structure(sdxl_unet):
    return UnetStructure.from_unet(sdxl_unet)


def _random_scores(structure, seed=0):
    rng = np.random.default_rng(seed)
    return HeadScores({n: rng.random(h) + 0.01 for n, h in zip(structure.names, structure.heads)}, "test", "none")


def test_percentile_removes_the_lowest_heads(structure):
    scores = _random_scores(structure)
    sel = select_heads(scores, PruneConfig("percentile", 40, min_heads_per_module=0, allow_drop_modules=True),
                       structure)
    flat = scores.flat(structure)
    threshold = np.percentile(flat, 40)
    assert np.array_equal(sel.kept_flat, flat > threshold)
    assert abs((1 - sel.retention_ratio) - 0.40) < 0.03


def test_retention_keeps_the_best_fraction_and_min_heads(structure):
    scores = _random_scores(structure, seed=1)
    sel = select_heads(scores, PruneConfig("retention", 0.5), structure)
    flat = scores.flat(structure)
    kept_counts = [k.sum() for k in sel.kept.values()]
    assert min(kept_counts) >= 1 and not sel.dropped
    # The target is met exactly; besides each module's best head, the kept heads are the best of the rest.
    target = int(round(0.5 * flat.size))
    assert sel.heads_kept == target
    best_of_module = np.zeros(flat.size, dtype=bool)
    for i in range(len(structure.names)):
        lo, hi = structure.offsets[i], structure.offsets[i + 1]
        best_of_module[lo + int(np.argmax(flat[lo:hi]))] = True
    others = ~best_of_module
    kept_others, dropped_others = flat[sel.kept_flat & others], flat[~sel.kept_flat & others]
    assert kept_others.min() >= dropped_others.max()
    assert sel.kept_flat[best_of_module].all()


def test_weak_module_keeps_its_best_head_or_is_dropped_deliberately(structure):
    scores = _random_scores(structure, seed=2)
    weak = structure.names[3]
    scores.values[weak] = np.array([1e-6 * (i + 1) for i in range(structure.heads[3])])
    keep = select_heads(scores, PruneConfig("absolute", 0.5, min_heads_per_module=1), structure)
    assert keep.kept[weak].sum() == 1 and keep.kept[weak][-1]  # the best of the weak heads
    drop = select_heads(scores, PruneConfig("absolute", 0.5, min_heads_per_module=1, allow_drop_modules=True),
                        structure)
    assert weak in drop.dropped and drop.kept[weak].sum() == 0
    with pytest.raises(SelectionError, match="zero heads"):
        PruneConfig("percentile", 50, min_heads_per_module=0)
    with pytest.raises(SelectionError, match="percentile"):
        PruneConfig("percentile", 150)


def test_estimate_matches_real_surgery(sdxl_unet, structure):
    import copy

    scores = _random_scores(structure, seed=3)
    scores.values[structure.names[0]][:] = 1e-9  # will be dropped as a whole
    sel = select_heads(scores, PruneConfig("percentile", 60, allow_drop_modules=True), structure)
    assert sel.dropped
    est = estimate(sel)
    unet = copy.deepcopy(sdxl_unet)
    before = sum(p.numel() for p in unet.parameters())
    prune_heads(unet, sel)
    after = sum(p.numel() for p in unet.parameters())
    assert est.params_removed == before - after
    assert est.bytes_removed == 4 * (before - after)
    assert est.heads_kept == sel.heads_kept == UnetStructure.from_unet(unet).total_heads + 0
    name = structure.names[1]
    kept, total, removed = est.per_module[name]
    assert total == structure.heads[1] and kept == sel.kept[name].sum()


def test_energy_scores_normalised_per_module_and_globally(structure):
    rng = np.random.default_rng(4)
    energy = {n: rng.random(h) * (10.0 if i % 2 else 1.0) + 0.1
              for i, (n, h) in enumerate(zip(structure.names, structure.heads))}
    prof = FakeProfile(energy)
    per_module = compute_head_scores(prof, "energy", "module")
    for name, v in per_module.values.items():
        assert v.mean() == pytest.approx(1.0)
        assert np.array_equal(np.argsort(v), np.argsort(energy[name]))
    glob = compute_head_scores(prof, "activation_energy_rank", "global")
    assert np.concatenate(list(glob.values.values())).mean() == pytest.approx(1.0)
    ratio = glob.values[structure.names[1]].mean() / glob.values[structure.names[0]].mean()
    assert ratio > 3  # global keeps the 10x scale difference between modules; per-module removes it
    rank = compute_head_scores(prof, "energy", "rank")
    assert rank.values[structure.names[2]].max() == pytest.approx(1.0)


def test_token_mass_scores_cross_by_mass_and_self_by_energy(structure):
    rng = np.random.default_rng(5)
    energy = {n: rng.random(h) + 0.1 for n, h in zip(structure.names, structure.heads)}
    mass = {n: rng.random(h) + 0.1 for n, h in zip(structure.names, structure.heads) if n.endswith("attn2")}
    scores = compute_head_scores(FakeProfile(energy, mass), "mass", "none")
    for name in structure.names:
        expected = mass[name] if name.endswith("attn2") else energy[name]
        np.testing.assert_allclose(scores.values[name], expected, rtol=1e-6)
        assert scores.sources[name] == ("token_mass" if name.endswith("attn2") else "energy")


def test_scores_from_another_model_are_refused(structure):
    prof = FakeProfile({"down_blocks.9.attn1": np.ones(3)})
    with pytest.raises(ScoringError, match="different model"):
        select_heads(compute_head_scores(prof, "energy"), PruneConfig(), structure)


def test_ablation_and_taylor_find_dead_and_dominant_heads():
    from core.pruning.tiny import tiny_inputs

    unet = tiny_unet("sd15", seed=1)
    name, attn = attention_modules(unet)[4]
    d = attn.inner_dim // attn.heads
    with torch.no_grad():
        attn.to_out[0].weight[:, 2 * d:3 * d] = 0  # head 2 contributes nothing
        attn.to_out[0].weight[:, 5 * d:6 * d] *= 20  # head 5 dominates the module's output
    inputs = [tiny_inputs(unet, seed=0)]
    exact = compute_head_scores(None, "ablation", "none", unet=unet, inputs=inputs, modules=[name])
    taylor = compute_head_scores(None, "taylor", "none", unet=unet, inputs=inputs, modules=[name], probes=4)
    for scores in (exact, taylor):
        v = scores.values[name]
        assert v[2] == pytest.approx(0.0, abs=1e-7)
        assert (np.delete(v, 2) > 1e-7).all()
        assert int(np.argmax(v)) == 5
    with pytest.raises(ScoringError, match="pipeline"):
        compute_head_scores(None, "ablation")


@pytest.mark.parametrize("family", ["builtin", "sdxl"])
def test_taylor_scores_from_a_pipeline(family, builtin_pipe):
    """The ablation inputs come from the profile's prompts through the pipeline's own text encoder(s)."""
    from core.testing.tiny_models import tiny_pipeline

    pipe = builtin_pipe if family == "builtin" else tiny_pipeline("sdxl", seed=0)
    modules = [n for n, _ in attention_modules(pipe.unet)][:3]
    prof = FakeProfile({})
    prof.meta = {"prompts": ["a red circle"], "seeds": [4]}
    flags = [p.requires_grad for p in pipe.unet.parameters()]
    scores = compute_head_scores(prof, "taylor", "none", pipe=pipe, modules=modules, probes=2)
    assert sorted(scores.values) == sorted(modules)
    for name in modules:
        v = scores.values[name]
        assert v.shape == (pipe.unet.get_submodule(name).heads,) and np.isfinite(v).all() and (v > 0).all()
    assert [p.requires_grad for p in pipe.unet.parameters()] == flags  # the model is left as it was


@pytest.mark.parametrize("precision,rest", [("int8", None), ("fp16", None), ("int8", "bf16")])
def test_estimate_reductions_match_the_measured_breakdown(sdxl_unet, structure, precision, rest):
    """The slider's byte estimate for heads + FFN + precision equals what the real reduction measures."""
    from core.pruning.extract import ExtractConfig, reduce_unet
    from core.pruning.ffn import select_ffn
    from core.pruning.selection import estimate_reductions
    from core.pruning.structure import ff_modules

    scores = _random_scores(structure, seed=11)
    scores.values[structure.names[2]][:] = 1e-9
    sel = select_heads(scores, PruneConfig("percentile", 50, allow_drop_modules=True), structure)
    assert sel.dropped
    rng = np.random.default_rng(1)
    ffn = select_ffn({n: rng.random(m.net[2].in_features) for n, m in ff_modules(sdxl_unet)}, 0.3)
    config = ExtractConfig(ffn_ratio=0.3, precision=precision, int8_rest_dtype=rest)
    with torch.no_grad():
        measured = reduce_unet(sdxl_unet, sel, ffn, config)
    est = estimate_reductions(sel, structure, 0.3, precision, rest)
    for got, want in zip(est["breakdown"], measured.breakdown):
        assert got["reduction"] == want["reduction"]
        assert got["bytes_removed"] == want["bytes_removed"], got["reduction"]
        assert got["params_removed"] == want["params_removed"], got["reduction"]
    assert est["fragment_bytes"] == measured.final["bytes"]


def test_a_custom_scorer_plugs_in(structure):
    from core.pruning.scores import register_head_scorer, scoring_methods

    @register_head_scorer("test_entropy_inverse", "inv-entropy")
    def _inverse(profile, **_):
        raw = {k: 1.0 / (np.asarray(v, dtype=np.float64) + 1e-3) for k, v in profile.energy.items()}
        return raw, {k: "entropy" for k in raw}

    rng = np.random.default_rng(6)
    energy = {n: rng.random(h) + 0.1 for n, h in zip(structure.names, structure.heads)}
    scores = compute_head_scores(FakeProfile(energy), "inv-entropy", "none")
    assert "test_entropy_inverse" in scoring_methods() and scores.method == "test_entropy_inverse"
    name = structure.names[5]
    assert int(np.argmax(scores.values[name])) == int(np.argmin(energy[name]))
    with pytest.raises(ScoringError, match="inv-entropy"):
        compute_head_scores(FakeProfile(energy), "nonsense")
