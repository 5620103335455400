"""Low-rank factorisation, int8 weight-only layers, precision tiers, and the per-reduction breakdown."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from core.pruning.lowrank import apply_low_rank, rank_for_energy, saves_params
from core.pruning.precision import int8_linear_class


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    pass



def _low_rank_plus_noise(m, n, r, noise, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, r, generator=g) @ torch.randn(r, n, generator=g) + noise * torch.randn(m, n, generator=g)


def test_rank_is_chosen_by_energy_and_only_where_it_saves():
    model = nn.Sequential()
    model.add_module("proj_in", nn.Linear(64, 96))
    model.add_module("proj_out", nn.Linear(64, 96))
    with torch.no_grad():
        model.proj_in.weight.copy_(_low_rank_plus_noise(96, 64, 8, 0.01))  # nearly rank 8
        model.proj_out.weight.copy_(torch.randn(96, 64))  # full rank: would not save anything
    x = torch.randn(5, 64)
    ref_in = model.proj_in(x)
    records = apply_low_rank(model, 0.99)
    assert [r.layer for r in records] == ["proj_in"]
    rec = records[0]
    assert rec.rank == 8 and rec.energy_retained >= 0.99 and rec.orig_rank == 64
    assert saves_params(rec.rank, 96, 64) and rec.params_after < rec.params_before
    assert type(model.proj_out) is nn.Linear
    out = model.proj_in(x)
    assert (out - ref_in).norm() / ref_in.norm() < 0.02


def test_rank_for_energy_rounds_up_to_multiple_of_8():
    s = torch.tensor([10.0, 5.0, 1.0, 0.5] + [0.01] * 20)
    r, kept = rank_for_energy(s, 0.9, multiple=1)
    assert r == 2 and kept >= 0.9
    r8, kept8 = rank_for_energy(s, 0.9)
    assert r8 == 8 and kept8 >= kept


def test_int8_linear_is_close_and_four_times_smaller():
    Int8 = int8_linear_class()
    lin = nn.Linear(128, 64)
    q = Int8.from_linear(lin)
    x = torch.randn(10, 128)
    err = (q(x) - lin(x)).abs().max() / lin(x).abs().max()
    assert 0 < err < 0.02
    assert q.weight.dtype == torch.int8 and q.weight.is_contiguous()
    w_bytes = q.weight.numel() * q.weight.element_size()
    assert w_bytes * 4 == lin.weight.numel() * lin.weight.element_size()
    # Per-channel symmetric: the largest |w| of each row maps to +-127 exactly.
    assert (q.weight.abs().amax(dim=1) == 127).all()
    # Works in reduced precision too (dequantises in the input's dtype).
    assert q.to(torch.bfloat16)(x.to(torch.bfloat16)).dtype == torch.bfloat16


def test_precision_tiers_on_a_tiny_unet():
    from core.pruning.extract import ExtractConfig, reduce_unet
    from core.pruning.sizes import resident_bytes
    from core.pruning.tiny import tiny_inputs, tiny_unet

    unet = tiny_unet("sd2", seed=3)
    inputs = tiny_inputs(unet, seed=1)
    with torch.no_grad():
        ref = unet(**inputs).sample
        fp16 = reduce_unet(unet, config=ExtractConfig(precision="bf16"))
        int8 = reduce_unet(unet, config=ExtractConfig(precision="int8"))
        out_int8 = int8.unet(**inputs).sample
    assert resident_bytes(unet) == fp16.base["bytes"]  # the base was copied, not changed
    assert fp16.final["bytes"] * 2 == fp16.base["bytes"]
    step = int8.breakdown[-1]
    linears = [m for m in unet.modules() if type(m) is nn.Linear]
    # fp32 weight (4 B) -> int8 (1 B) plus one fp32 scale per output channel; biases unchanged.
    expected = sum(3 * m.weight.numel() - 4 * m.out_features for m in linears)
    assert step["reduction"] == "precision" and step["bytes_removed"] == expected
    linear_count = sum(1 for m in unet.modules() if type(m) is nn.Linear)
    assert len(int8.plan["quantization"]["layers"]) == linear_count
    assert not any(type(m) is nn.Linear for m in int8.unet.modules())
    assert (out_int8 - ref).norm() / ref.norm() < 0.05


def test_breakdown_adds_up_for_all_reductions():
    from core.pruning.extract import ExtractConfig, reduce_unet
    from core.pruning.ffn import select_ffn
    from core.pruning.selection import HeadSelection
    from core.pruning.structure import UnetStructure, ff_modules
    from core.pruning.tiny import tiny_inputs, tiny_unet

    unet = tiny_unet("sdxl", seed=5)
    structure = UnetStructure.from_unet(unet)
    removed = {n: [0] for n, h in zip(structure.names, structure.heads) if h > 1}
    sel = HeadSelection.from_removed(structure, removed)
    rng = np.random.default_rng(0)
    ffn = select_ffn({n: rng.random(m.net[2].in_features) for n, m in ff_modules(unet)}, 0.5)
    with torch.no_grad():
        res = reduce_unet(unet, sel, ffn, ExtractConfig(ffn_ratio=0.5, low_rank_energy=0.5, precision="int8"))
        out = res.unet(**tiny_inputs(unet)).sample
    assert torch.isfinite(out).all()
    parts = {s["reduction"]: s["bytes_removed"] for s in res.breakdown}
    assert set(parts) == {"attention_heads", "ffn_neurons", "low_rank", "precision"}
    assert all(v > 0 for v in parts.values()), parts
    assert sum(parts.values()) == res.base["bytes"] - res.final["bytes"]
    assert res.plan["low_rank_layers"] and res.bytes_fraction_removed > 0.4


def test_reduction_leaves_the_base_untouched_while_sharing_unchanged_weights():
    from core.pruning.extract import ExtractConfig, reduce_unet
    from core.pruning.selection import HeadSelection
    from core.pruning.structure import UnetStructure
    from core.pruning.tiny import tiny_unet

    unet = tiny_unet("sd15", seed=7)
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    structure = UnetStructure.from_unet(unet)
    sel = HeadSelection.from_removed(structure, {structure.names[0]: [1, 3]})
    res = reduce_unet(unet, sel, config=ExtractConfig(precision="fp16"))
    after = unet.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert after[key].dtype == torch.float32 and torch.equal(after[key], value), key
    assert UnetStructure.from_unet(unet).total_heads == structure.total_heads
    assert res.unet.conv_in.weight.dtype == torch.float16
    same = reduce_unet(unet, sel)  # fp32: untouched layers share storage with the base
    assert same.unet.conv_in.weight.data_ptr() == unet.conv_in.weight.data_ptr()
    assert same.unet.conv_in.weight is not unet.conv_in.weight
