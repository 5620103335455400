"""What can be pruned in a UNet: the head-bearing attentions and feed-forwards of its transformer blocks.

`UnetStructure` is a numpy summary (per-module head counts and parameter costs) precomputed once, so the
GUI slider's `estimate()` is a few vectorised operations. It works on a meta-device UNet (no weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BYTES_PER_DTYPE = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}


@dataclass(frozen=True)
class AttentionInfo:
    name: str
    kind: str  # "self" | "cross"
    heads: int
    head_dim: int
    query_dim: int
    kv_in_dim: int
    out_dim: int
    qkv_bias: bool
    out_bias: bool

    @property
    def params_per_head(self) -> int:
        d = self.head_dim
        return d * (self.query_dim + 2 * self.kv_in_dim + self.out_dim) + (3 * d if self.qkv_bias else 0)


def _is_head_module(name: str, module) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return leaf in ("attn1", "attn2") and hasattr(module, "to_q") and hasattr(module, "heads") and module.to_out is not None


def attention_modules(unet) -> list[tuple[str, object]]:
    """(name, Attention) for every attn1/attn2 of a transformer block, in `named_modules()` order."""
    return [(n, m) for n, m in unet.named_modules() if _is_head_module(n, m)]


def ff_modules(unet) -> list[tuple[str, object]]:
    """(name, FeedForward) for every `ff` of a transformer block whose hidden layer can be pruned."""
    out = []
    for name, module in unet.named_modules():
        if name.rsplit(".", 1)[-1] == "ff" and hasattr(module, "net") and hasattr(module.net[0], "proj"):
            out.append((name, module))
    return out


def ff_inner_dim(ff) -> int:
    return ff.net[-1].in_features if hasattr(ff.net[-1], "in_features") else ff.net[2].in_features


def _in_features(lin) -> int:
    return lin.in_features


def attention_info(name: str, attn) -> AttentionInfo:
    heads = int(attn.heads)
    head_dim = int(attn.inner_dim) // heads
    return AttentionInfo(
        name=name,
        kind="cross" if name.endswith("attn2") else "self",
        heads=heads,
        head_dim=head_dim,
        query_dim=_in_features(attn.to_q),
        kv_in_dim=_in_features(attn.to_k),
        out_dim=int(attn.to_out[0].out_features),
        qkv_bias=attn.to_q.bias is not None,
        out_bias=attn.to_out[0].bias is not None,
    )


@dataclass(frozen=True)
class FfnInfo:
    name: str
    dim_in: int
    inner: int
    dim_out: int
    gated: bool  # GEGLU: net.0.proj has 2 * inner rows
    proj_bias: bool

    @property
    def rows_per_neuron(self) -> int:
        return 2 if self.gated else 1

    @property
    def params_per_neuron(self) -> int:
        g = self.rows_per_neuron
        return g * (self.dim_in + (1 if self.proj_bias else 0)) + self.dim_out


def ffn_info(name: str, ff) -> FfnInfo:
    proj, out = ff.net[0].proj, ff.net[2]
    return FfnInfo(name, int(proj.in_features), int(out.in_features), int(out.out_features),
                   proj.out_features == 2 * out.in_features, proj.bias is not None)


def linear_totals(unet) -> tuple[int, int, int]:
    """(weight values, bias values, output features) over every plain nn.Linear."""
    from torch import nn

    w = b = o = 0
    for m in unet.modules():
        if type(m) is nn.Linear:
            w += m.weight.numel()
            b += m.bias.numel() if m.bias is not None else 0
            o += m.out_features
    return w, b, o


def count_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclass
class UnetStructure:
    """Per-module arrays for the fast estimate. Build once per model with `from_unet` (meta device is fine)."""

    infos: list[AttentionInfo]
    total_params: int
    dtype_bytes: int = 4
    ffns: list[FfnInfo] = field(default_factory=list)
    linear_weight_params: int = 0
    linear_bias_params: int = 0
    linear_out_features: int = 0
    names: list[str] = field(init=False)
    heads: np.ndarray = field(init=False)
    params_per_head: np.ndarray = field(init=False)
    drop_extra_params: np.ndarray = field(init=False)
    module_of_head: np.ndarray = field(init=False)
    offsets: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.names = [i.name for i in self.infos]
        self.heads = np.array([i.heads for i in self.infos], dtype=np.int64)
        self.params_per_head = np.array([i.params_per_head for i in self.infos], dtype=np.int64)
        # What dropping a whole attention removes beyond its heads: the out-projection bias.
        self.drop_extra_params = np.array([i.out_dim if i.out_bias else 0 for i in self.infos], dtype=np.int64)
        self.module_of_head = np.repeat(np.arange(len(self.infos)), self.heads)
        self.offsets = np.concatenate([[0], np.cumsum(self.heads)]).astype(np.int64)

    @property
    def total_heads(self) -> int:
        return int(self.heads.sum())

    def index(self, name: str) -> int:
        return self.names.index(name)

    @classmethod
    def from_unet(cls, unet, dtype_bytes: int | None = None) -> UnetStructure:
        infos = [attention_info(n, m) for n, m in attention_modules(unet)]
        if dtype_bytes is None:
            first = next(unet.parameters())
            dtype_bytes = first.element_size()
        w, b, o = linear_totals(unet)
        return cls(infos=infos, total_params=count_params(unet), dtype_bytes=int(dtype_bytes),
                   ffns=[ffn_info(n, m) for n, m in ff_modules(unet)], linear_weight_params=w,
                   linear_bias_params=b, linear_out_features=o)

    @classmethod
    def from_config(cls, config: dict, dtype_bytes: int = 4) -> UnetStructure:
        return cls.from_unet(meta_unet_from_config(config), dtype_bytes=dtype_bytes)


def meta_unet_from_config(config):
    """A UNet2DConditionModel with the given config on the meta device: structure without memory."""
    import torch

    from core.offline import import_diffusers

    diffusers = import_diffusers()
    config = {k: v for k, v in dict(config).items() if not k.startswith("_")}
    with torch.device("meta"):
        return diffusers.UNet2DConditionModel.from_config(config)


def replace_submodule(root, name: str, new) -> None:
    """Puts `new` where the dotted `name` is in `root` (indices of ModuleLists/Sequentials included)."""
    parent_name, _, leaf = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    if leaf.isdigit():
        parent[int(leaf)] = new
    else:
        setattr(parent, leaf, new)
