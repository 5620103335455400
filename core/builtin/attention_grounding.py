"""Token grounding for training the built-in model: a loss that puts each object word's cross-attention on its object.

The shapes world knows where every object is drawn, so training can ask more of cross-attention than the
denoising loss does (as TokenCompose does with segmentation masks): for every colour, shape, size and position word
of an object's phrase, the share of that token's attention mass (averaged over heads, over image positions) that
falls inside the object's mask should be high. In a two-object prompt this is what binds "red" to the circle on the
left rather than to the square on the right — the denoising loss alone leaves that pairing at chance.

`GroundingTargets` turns captions + scene masks into per-token mask tensors; `recording_cross_attention(unet)`
swaps every `attn2` processor for one that computes the attention explicitly and keeps the head-averaged
probabilities with their gradient; `grounding_loss` compares the two.
"""

from __future__ import annotations

import contextlib

GROUNDED_WORDS = ("red", "green", "blue", "yellow", "orange", "purple", "circle", "square", "triangle", "small",
                  "little", "large", "big", "left", "right", "top", "bottom", "centre", "middle")


class _RecordingProcessor:
    """Cross-attention computed explicitly (the classic diffusers path) so its probabilities keep their gradient."""

    def __init__(self, sink: list):
        self.sink = sink

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        import torch

        if hidden_states.ndim != 3 or attention_mask is not None or attn.group_norm is not None or attn.spatial_norm is not None:
            raise ValueError("grounding expects the plain cross-attention of a transformer block")
        batch = hidden_states.shape[0]
        residual = hidden_states
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        value = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        probs = attn.get_attention_scores(query, key, None)  # (batch*heads, queries, tokens)
        self.sink.append(probs.view(batch, attn.heads, *probs.shape[1:]).mean(1))
        out = attn.batch_to_head_dim(torch.bmm(probs, value))
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


@contextlib.contextmanager
def recording_cross_attention(unet):
    """Yields a list that fills with (batch, queries, tokens) head-averaged probabilities of every attn2 call."""
    from core.builtin.attention_probe import swapped_cross_attention

    sink: list = []
    with swapped_cross_attention(unet, lambda _inner: _RecordingProcessor(sink)):
        yield sink


def scene_masks(scenes, sides=(16, 8, 4)):
    """{side: float tensor (n_scenes, 2, side*side)}: the fraction of each cell covered by object 0 / object 1
    (zeros for a missing second object), area-averaged from the full-size render."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from core.shapes.scene import render
    from core.shapes.world import IMAGE_SIZE

    full = np.zeros((len(scenes), 2, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for i, scene in enumerate(scenes):
        masks = render(scene)[1]
        full[i, : len(masks)] = masks
    full_t = torch.from_numpy(full)
    return {side: F.adaptive_avg_pool2d(full_t, side).flatten(2) for side in sides}


class GroundingTargets:
    """For each caption (joined object phrases), which object each token belongs to (-1: not grounded)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.length = tokenizer.model_max_length
        ids = tokenizer(list(GROUNDED_WORDS), add_special_tokens=False).input_ids
        if any(len(i) != 1 for i in ids):
            raise ValueError("every grounded word must be one token of the CLIP vocabulary")
        self.grounded_ids = {i[0] for i in ids}
        from core.shapes.captions import OBJECT_JOINER

        self.joiner_length = len(tokenizer(OBJECT_JOINER, add_special_tokens=False).input_ids)
        self._cache: dict[tuple, list[int]] = {}

    def owners(self, phrases) -> list[int]:
        key = tuple(phrases)
        if key not in self._cache:
            owner = [-1]  # BOS
            for k, phrase in enumerate(phrases):
                if k:
                    owner += [-1] * self.joiner_length
                owner += [k if t in self.grounded_ids else -1
                          for t in self.tokenizer(phrase, add_special_tokens=False).input_ids]
            owner = (owner + [-1] * self.length)[: self.length]
            self._cache[key] = owner
        return self._cache[key]

    def __call__(self, phrase_lists):
        """(batch, tokens) long tensor of owners; an empty list (a dropped caption) grounds nothing."""
        import torch

        return torch.tensor([self.owners(p) if p else [-1] * self.length for p in phrase_lists], dtype=torch.long)


def grounding_loss(maps, owners, masks_by_side):
    """Mean over attention maps and grounded tokens of (1 - share of the token's attention inside its object)^2.

    maps: [(batch, side*side, tokens)]; owners: (batch, tokens) from `GroundingTargets`; masks_by_side:
    {side: (batch, 2, side*side)}. Returns a scalar tensor (zero when nothing in the batch is grounded).
    """
    import math

    import torch

    grounded = owners >= 0
    if not bool(grounded.any()):
        return maps[0].sum() * 0.0
    index = owners.clamp_min(0)
    losses = []
    for probs in maps:
        side = math.isqrt(probs.shape[1])
        masks = masks_by_side[side]  # (batch, 2, cells)
        token_masks = torch.gather(masks, 1, index[..., None].expand(-1, -1, masks.shape[-1]))  # (batch, tokens, cells)
        inside = torch.einsum("bnt,btn->bt", probs, token_masks)
        share = inside / probs.sum(1).clamp_min(1e-8)
        losses.append(((1 - share) ** 2)[grounded].mean())
    return torch.stack(losses).mean()
