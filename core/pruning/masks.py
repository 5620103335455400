"""Logical masks: a head's (or an FFN neuron's) output is multiplied by a gate before the output projection.

Shapes never change, so a preview toggles instantly and is fully reversible. Gates are the same mechanism the
ablation/Taylor score uses (a multiplier per head on the head's slice of the input to `to_out[0]`).
Diffusers processors lay that input out head-major (channel = head * head_dim + j), for every processor.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Mapping


def _channel_gate(gate, repeat: int):
    return gate.repeat_interleave(repeat) if repeat > 1 else gate


@contextlib.contextmanager
def head_gates(unet, gates: Mapping[str, "object"]) -> Iterator[dict]:
    """Multiplies each head's slice by `gates[name][h]` (a tensor of shape (heads,), may require grad)."""
    modules = dict(unet.named_modules())
    handles = []
    try:
        for name, gate in gates.items():
            attn = modules[name]
            head_dim = attn.inner_dim // attn.heads
            if gate.shape != (attn.heads,):
                raise ValueError(f"gate for {name} has shape {tuple(gate.shape)}, expected ({attn.heads},)")

            def hook(_mod, args, _gate=gate, _d=head_dim):
                x = args[0]
                g = _channel_gate(_gate.to(device=x.device, dtype=x.dtype), _d)
                return (x * g,) + tuple(args[1:])

            handles.append(attn.to_out[0].register_forward_pre_hook(hook))
        yield dict(gates)
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def ffn_gates(unet, gates: Mapping[str, "object"]) -> Iterator[dict]:
    """Multiplies each FFN hidden neuron by `gates[ff_name][j]` before the FFN's output projection."""
    modules = dict(unet.named_modules())
    handles = []
    try:
        for name, gate in gates.items():
            out_proj = modules[name].net[2]

            def hook(_mod, args, _gate=gate):
                x = args[0]
                return (x * _gate.to(device=x.device, dtype=x.dtype),) + tuple(args[1:])

            handles.append(out_proj.register_forward_pre_hook(hook))
        yield dict(gates)
    finally:
        for handle in handles:
            handle.remove()


def _selection_gates(selection):
    import torch

    return {name: torch.from_numpy(kept.astype("float32")) for name, kept in selection.kept.items() if not kept.all()}


@contextlib.contextmanager
def silenced_attentions(unet, names) -> Iterator[None]:
    """Whole attentions output nothing (bias included), as `DroppedAttention` does after surgery."""
    handles = []

    def hook(module, args, output):
        if getattr(module, "residual_connection", False):
            return args[0] / module.rescale_output_factor
        return output * 0

    try:
        for name in names:
            handles.append(unet.get_submodule(name).register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def apply_head_masks(unet, selection, ffn_selection=None) -> Iterator[None]:
    """Logical pruning for preview: the removed heads (and FFN neurons) output zero; undone on exit.

    A module in `selection.dropped` contributes nothing at all (its out-projection bias included), exactly
    what `prune_heads` leaves behind when it drops the attention.
    """
    ffn = {}
    if ffn_selection is not None:
        import torch

        ffn = {n: torch.from_numpy(k.astype("float32")) for n, k in ffn_selection.kept.items() if not k.all()}
    with head_gates(unet, _selection_gates(selection)), ffn_gates(unet, ffn), \
            silenced_attentions(unet, getattr(selection, "dropped", ())):
        yield
