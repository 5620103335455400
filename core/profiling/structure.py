"""Which modules of a UNet carry heads, in `named_modules()` order, and where each lands in flat tensors."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from core.errors import HeadRoomError


class ProfilingError(HeadRoomError):
    """The model or the run cannot be profiled as asked; the message says why and what to do."""


@dataclass(frozen=True)
class ModuleRecord:
    name: str  # e.g. "down_blocks.0.attentions.0.transformer_blocks.0.attn2"
    kind: str  # "self" | "cross"
    heads: int
    head_dim: int
    offset: int = 0  # first column of this module's heads in the flat (.., total_heads) tensors
    cross_offset: int = -1  # first column in the flat cross-only tensors; -1 for self-attention

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FfnRecord:
    name: str  # e.g. "...transformer_blocks.0.ff"
    inner: int  # hidden neurons (GEGLU output width)
    offset: int = 0

    def to_json(self) -> dict:
        return asdict(self)


def discover(unet) -> tuple[list[ModuleRecord], list[FfnRecord]]:
    """Attention modules (attn1 = self, attn2 = cross) of every BasicTransformerBlock, and their FFNs."""
    from diffusers.models.attention import BasicTransformerBlock

    modules: list[ModuleRecord] = []
    ffns: list[FfnRecord] = []
    offset = cross_offset = ffn_offset = 0
    for block_name, block in unet.named_modules():
        if not isinstance(block, BasicTransformerBlock):
            continue
        for attr in ("attn1", "attn2"):
            attn = getattr(block, attr, None)
            if attn is None:
                continue
            kind = "cross" if attn.is_cross_attention else "self"
            head_dim = attn.to_q.out_features // attn.heads
            modules.append(ModuleRecord(f"{block_name}.{attr}", kind, attn.heads, head_dim, offset,
                                        cross_offset if kind == "cross" else -1))
            offset += attn.heads
            if kind == "cross":
                cross_offset += attn.heads
        ff = getattr(block, "ff", None)
        if ff is not None and hasattr(ff, "net") and len(ff.net) >= 3 and hasattr(ff.net[2], "in_features"):
            ffns.append(FfnRecord(f"{block_name}.ff", ff.net[2].in_features, ffn_offset))
            ffn_offset += ff.net[2].in_features
    return modules, ffns

