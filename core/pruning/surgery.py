"""Physical pruning: slices weights so removed heads / FFN neurons no longer exist.

Heads: rows of to_q/to_k/to_v (and their biases), columns of to_out[0]; `heads`, `inner_dim`, `inner_kv_dim`,
`sliceable_head_dim` updated; `scale` unchanged (it depends on the head size). A module with every head removed
is replaced by `DroppedAttention`, which contributes nothing (output zero, out-projection bias included): the
block's residual carries the signal. Works on meta tensors too (used to rebuild a fragment's structure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from core.errors import HeadRoomError
from core.pruning.structure import replace_submodule


class SurgeryError(HeadRoomError):
    pass


def _module_class():
    from torch import nn

    class DroppedAttention(nn.Module):
        """An attention removed as a whole: it adds nothing to the residual stream and holds no weights."""

        def __init__(self, out_dim: int, residual_connection=False, rescale_output_factor=1.0):
            super().__init__()
            self.out_dim = int(out_dim)
            self.residual_connection = bool(residual_connection)
            self.rescale_output_factor = float(rescale_output_factor)

        def forward(self, hidden_states, encoder_hidden_states=None, attention_mask=None, **kwargs):
            if self.residual_connection:
                return hidden_states / self.rescale_output_factor
            return hidden_states.new_zeros(hidden_states.shape[:-1] + (self.out_dim,))

        def extra_repr(self) -> str:
            return f"out_dim={self.out_dim}, dropped=True"

    return DroppedAttention


_DROPPED = None


def dropped_attention_class():
    global _DROPPED
    if _DROPPED is None:
        _DROPPED = _module_class()
    return _DROPPED




def _slice_linear_out(lin, rows):
    from torch import nn

    lin.weight = nn.Parameter(lin.weight.detach()[rows].clone().contiguous(), requires_grad=lin.weight.requires_grad)
    if lin.bias is not None:
        lin.bias = nn.Parameter(lin.bias.detach()[rows].clone().contiguous(), requires_grad=lin.bias.requires_grad)
    lin.out_features = int(rows.numel())


def _slice_linear_in(lin, cols):
    from torch import nn

    lin.weight = nn.Parameter(lin.weight.detach()[:, cols].clone().contiguous(),
                              requires_grad=lin.weight.requires_grad)
    lin.in_features = int(cols.numel())


def prune_attention_heads(attn, keep: Sequence[int]) -> None:
    """Keeps heads `keep` (sorted, non-empty) of one diffusers `Attention`, in place."""
    import torch

    keep = sorted(int(h) for h in keep)
    if not keep:
        raise SurgeryError("An attention cannot keep zero heads; drop it as a whole instead.")
    heads = int(attn.heads)
    d = int(attn.inner_dim) // heads
    if keep[-1] >= heads or keep[0] < 0:
        raise SurgeryError(f"Head index out of range: the module has {heads} heads, asked to keep {keep}.")
    if len(keep) == heads:
        return
    if getattr(attn, "fused_projections", False):
        raise SurgeryError("Unfuse the QKV projections (unet.unfuse_qkv_projections()) before pruning.")
    device = attn.to_q.weight.device
    rows = torch.cat([torch.arange(h * d, (h + 1) * d) for h in keep]).to(device)
    for lin in (attn.to_q, attn.to_k, attn.to_v):
        _slice_linear_out(lin, rows)
    _slice_linear_in(attn.to_out[0], rows)
    attn.heads = len(keep)
    attn.inner_dim = len(keep) * d
    attn.inner_kv_dim = len(keep) * d
    attn.sliceable_head_dim = len(keep)


def drop_attention(unet, name: str) -> None:
    attn = unet.get_submodule(name)
    out = attn.to_out[0]
    new = dropped_attention_class()(out.out_features, attn.residual_connection, attn.rescale_output_factor)
    replace_submodule(unet, name, new)


def prune_heads(unet, selection) -> dict[str, list[int]]:
    """Physical surgery for a `HeadSelection` (or a mapping name -> removed head indices). Returns what was
    removed per module. Dropped modules (selection.dropped) are replaced by `DroppedAttention`."""
    if hasattr(selection, "removed_heads"):
        removed = selection.removed_heads()
        dropped = set(selection.dropped)
    else:
        removed, dropped = dict(selection), set()
    for name, heads in removed.items():
        if name in dropped:
            continue
        attn = unet.get_submodule(name)
        keep = sorted(set(range(attn.heads)) - set(int(h) for h in heads))
        if not keep:
            raise SurgeryError(f"{name} would keep zero heads; it must be listed as dropped to be removed.")
        prune_attention_heads(attn, keep)
    for name in sorted(dropped):
        drop_attention(unet, name)
    return removed


def prune_ffn(unet, removed: Mapping[str, Sequence[int]]) -> None:
    """Removes hidden neurons of transformer feed-forwards: GEGLU `net.0.proj` rows of both halves (value and
    gate), plain GELU rows, and the matching columns of `net.2`."""
    import torch

    for name, neurons in removed.items():
        ff = unet.get_submodule(name)
        proj = ff.net[0].proj
        out = ff.net[2]
        inner = out.in_features
        keep = np.setdiff1d(np.arange(inner), np.asarray(list(neurons), dtype=np.int64))
        if keep.size == 0:
            raise SurgeryError(f"{name} would keep zero neurons; keep at least one.")
        if keep.size == inner:
            continue
        keep_t = torch.as_tensor(keep, device=out.weight.device)
        if proj.out_features == 2 * inner:  # GEGLU: [value | gate]
            rows = torch.cat([keep_t, keep_t + inner])
        elif proj.out_features == inner:
            rows = keep_t
        else:
            raise SurgeryError(f"{name}: unexpected feed-forward shape {proj.out_features} -> {inner}.")
        _slice_linear_out(proj, rows)
        _slice_linear_in(out, keep_t)
