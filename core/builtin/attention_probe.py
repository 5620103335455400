"""Measures where a token's cross-attention goes: the share of its attention mass inside an image mask.

A wrapper around each `attn2` processor recomputes the attention probabilities of the conditional half of
the batch (the output is left to the original processor, so generation is unchanged).
"""

from __future__ import annotations

import contextlib


class _ProbeProcessor:
    def __init__(self, inner, sink: list):
        self.inner = inner
        self.sink = sink

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        import torch

        if encoder_hidden_states is not None and hidden_states.ndim == 3:
            with torch.no_grad():
                cond_hidden = hidden_states[hidden_states.shape[0] // 2 :]
                cond_context = encoder_hidden_states[encoder_hidden_states.shape[0] // 2 :]
                query = attn.head_to_batch_dim(attn.to_q(cond_hidden))
                key = attn.head_to_batch_dim(attn.to_k(cond_context))
                probs = attn.get_attention_scores(query, key, None)  # (batch*heads, queries, tokens)
                self.sink.append(probs.view(-1, attn.heads, *probs.shape[1:]).float())
        return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb, **kwargs)


@contextlib.contextmanager
def swapped_cross_attention(unet, make_processor):
    """Within the block every `attn2` module runs `make_processor(its_original_processor)`; restored afterwards."""
    originals = {}
    for name, module in unet.named_modules():
        if name.endswith("attn2"):
            originals[name] = module.processor
            module.set_processor(make_processor(module.processor))
    try:
        yield
    finally:
        for name, module in unet.named_modules():
            if name in originals:
                module.set_processor(originals[name])


@contextlib.contextmanager
def record_cross_attention(unet):
    """Yields a list that fills with (batch, heads, queries, tokens) probabilities of every attn2 call."""
    sink: list = []
    with swapped_cross_attention(unet, lambda inner: _ProbeProcessor(inner, sink)):
        yield sink


def mass_inside_mask(probabilities: list, token_index: int, mask) -> float:
    """Mean over calls (modules x steps), images and heads of the share of `token_index`'s attention mass
    over image positions that lies inside `mask` (bool (H, W), area-averaged down to each resolution)."""
    import math

    import torch
    import torch.nn.functional as F

    mask_t = torch.as_tensor(mask, dtype=torch.float32)[None, None]
    shares = []
    for probs in probabilities:
        side = math.isqrt(probs.shape[2])
        weights = F.adaptive_avg_pool2d(mask_t, side).flatten()  # fraction of each cell inside the mask
        token = probs[..., token_index]  # (batch, heads, queries)
        shares.append(((token * weights).sum(-1) / token.sum(-1).clamp_min(1e-12)).mean())
    return float(torch.stack(shares).mean())
