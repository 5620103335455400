"""Invariant: the logically masked model and the physically pruned model compute the same output."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from core.pruning.masks import apply_head_masks
from core.pruning.selection import HeadSelection, SelectionError
from core.pruning.structure import UnetStructure, attention_modules
from core.pruning.surgery import SurgeryError, prune_ffn, prune_heads
from core.pruning.tiny import builtin_unet_inputs, tiny_inputs, tiny_unet


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    pass



def _random_selection(structure: UnetStructure, seed: int, drop: int = 1) -> HeadSelection:
    rng = np.random.default_rng(seed)
    removed, dropped = {}, []
    candidates = [n for n, h in zip(structure.names, structure.heads) if h > 1]
    for name in structure.names[:drop]:
        dropped.append(name)
    for name, heads in zip(structure.names, structure.heads.tolist()):
        if name in dropped or heads < 2:
            continue
        k = int(rng.integers(1, heads))  # remove between 1 and heads-1
        removed[name] = sorted(rng.choice(heads, size=k, replace=False).tolist())
    assert candidates, "the test model must have multi-head modules"
    return HeadSelection.from_removed(structure, removed, dropped=dropped)


def _check_invariant(unet, inputs, seed=0, processor=None, check_exit=False):
    unet = unet.eval()
    if processor is not None:
        unet.set_attn_processor(processor)
    structure = UnetStructure.from_unet(unet)
    sel = _random_selection(structure, seed)
    with torch.no_grad():
        base = unet(**inputs).sample
        with apply_head_masks(unet, sel):
            masked = unet(**inputs).sample
        after_exit = unet(**inputs).sample if check_exit else base
        pruned_unet = copy.deepcopy(unet)
        prune_heads(pruned_unet, sel)
        pruned = pruned_unet(**inputs).sample
    # Masking does something, and is undone on exit.
    assert (masked - base).abs().max() > 1e-4
    torch.testing.assert_close(after_exit, base)
    torch.testing.assert_close(pruned, masked, rtol=1e-4, atol=1e-5)
    # The structure really shrank, and tensors are contiguous clones (safetensors accepts them).
    after = UnetStructure.from_unet(pruned_unet)
    assert after.total_heads == sel.heads_kept
    assert sum(p.numel() for p in pruned_unet.parameters()) < sum(p.numel() for p in unet.parameters())
    for _, attn in attention_modules(pruned_unet):
        assert attn.to_q.weight.is_contiguous() and attn.to_out[0].weight.is_contiguous()
        assert attn.to_q.out_features == attn.heads * (attn.inner_dim // attn.heads) == attn.inner_dim
    return pruned_unet, sel


@pytest.mark.parametrize("family", ["sd15", "sd2", "sdxl"])
def test_masked_equals_pruned_tiny_families(family):
    unet = tiny_unet(family, seed=1)
    _check_invariant(unet, tiny_inputs(unet, seed=2), seed=3)


def test_masked_equals_pruned_with_classic_processor():
    from diffusers.models.attention_processor import AttnProcessor

    unet = tiny_unet("sdxl", seed=4)
    _check_invariant(unet, tiny_inputs(unet, seed=5), seed=6, processor=AttnProcessor())


def test_masked_equals_pruned_with_sliced_processor():
    from diffusers.models.attention_processor import SlicedAttnProcessor

    unet = tiny_unet("sd15", seed=12)
    _check_invariant(unet, tiny_inputs(unet, seed=13), seed=14, processor=SlicedAttnProcessor(slice_size=1))


def test_masked_equals_pruned_builtin(builtin_pipe):
    unet = copy.deepcopy(builtin_pipe.unet)
    pruned, sel = _check_invariant(unet, builtin_unet_inputs(unet, seed=7), seed=8, check_exit=True)
    dropped_module = pruned.get_submodule(sel.dropped[0])
    assert type(dropped_module).__name__ == "DroppedAttention" and not list(dropped_module.parameters())
    # The original pipeline's UNet is untouched.
    assert UnetStructure.from_unet(builtin_pipe.unet).total_heads == sel.heads_total


def test_pruned_processor_uses_new_head_count_for_sdpa():
    """A wrong `heads` gives silently wrong output with SDPA; check the head size stayed the same."""
    unet = tiny_unet("sd15", seed=0)
    structure = UnetStructure.from_unet(unet)
    name = structure.names[0]
    sel = HeadSelection.from_removed(structure, {name: [0, 2, 5]})
    prune_heads(unet, sel)
    attn = unet.get_submodule(name)
    assert attn.heads == structure.heads[0] - 3
    assert attn.inner_dim // attn.heads == structure.infos[0].head_dim
    assert attn.scale == pytest.approx(structure.infos[0].head_dim ** -0.5)


def test_zero_heads_refused_unless_dropped():
    unet = tiny_unet("sd15", seed=0)
    structure = UnetStructure.from_unet(unet)
    name = structure.names[0]
    with pytest.raises(SelectionError, match="zero heads"):
        HeadSelection.from_removed(structure, {name: list(range(int(structure.heads[0])))})
    with pytest.raises(SurgeryError, match="zero heads"):
        prune_heads(unet, {name: list(range(int(structure.heads[0])))})


def test_ffn_mask_equals_ffn_pruning():
    from core.pruning.ffn import FfnSelection

    unet = tiny_unet("sdxl", seed=9).eval()
    inputs = tiny_inputs(unet, seed=10)
    rng = np.random.default_rng(0)
    kept = {}
    for name, ff in [(n, m) for n, m in unet.named_modules() if n.endswith(".ff")]:
        inner = ff.net[2].in_features
        k = np.ones(inner, dtype=bool)
        k[rng.choice(inner, size=inner // 2, replace=False)] = False
        kept[name] = k
    ffn_sel = FfnSelection(kept)
    structure = UnetStructure.from_unet(unet)
    no_heads = HeadSelection.from_removed(structure, {})
    with torch.no_grad():
        base = unet(**inputs).sample
        with apply_head_masks(unet, no_heads, ffn_sel):
            masked = unet(**inputs).sample
        prune_ffn(unet, ffn_sel.removed())
        pruned = unet(**inputs).sample
    assert (masked - base).abs().max() > 1e-4
    torch.testing.assert_close(pruned, masked, rtol=1e-4, atol=1e-5)
    for name, k in kept.items():
        ff = unet.get_submodule(name)
        assert ff.net[2].in_features == k.sum() and ff.net[0].proj.out_features == 2 * k.sum()
