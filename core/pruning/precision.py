"""Precision tiers: fp16 / bf16 casts, and 8-bit weight-only linear layers.

`Int8Linear` stores each weight row as int8 with one scale per output channel (symmetric, absmax/127) and
dequantises on the fly in the input's dtype, so it runs on CPU and CUDA alike with plain torch ops. (torchao's
int8 weight-only path targets CUDA / torch.compile and optimum-quanto is not installed here; this is small,
exact about what it stores, and tested.) Only nn.Linear layers are quantised; convolutions and norms keep the
floating dtype.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from core.pruning.structure import replace_submodule

PRECISIONS = ("fp32", "fp16", "bf16", "int8")


def torch_dtype(name: str):
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


def dtype_name(dtype) -> str:
    import torch

    return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16", torch.int8: "int8"}[dtype]


@functools.cache
def int8_linear_class():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Int8Linear(nn.Module):
        def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
            super().__init__()
            self.in_features, self.out_features = int(in_features), int(out_features)
            dtype = dtype or torch.float32
            self.register_buffer("weight", torch.zeros(out_features, in_features, dtype=torch.int8, device=device))
            self.register_buffer("weight_scale", torch.ones(out_features, dtype=dtype, device=device))
            if bias:
                self.bias = nn.Parameter(torch.zeros(out_features, dtype=dtype, device=device), requires_grad=False)
            else:
                self.register_parameter("bias", None)

        @classmethod
        def from_linear(cls, lin):
            w = lin.weight.detach()
            q = cls(lin.in_features, lin.out_features, lin.bias is not None, device=w.device, dtype=w.dtype)
            scale = w.float().abs().amax(dim=1).clamp_min(1e-12) / 127.0
            q.weight = torch.round(w.float() / scale[:, None]).clamp_(-127, 127).to(torch.int8).contiguous()
            q.weight_scale = scale.to(w.dtype).contiguous()
            if lin.bias is not None:
                q.bias = nn.Parameter(lin.bias.detach().clone().contiguous(), requires_grad=False)
            return q

        def dequantized_weight(self, dtype):
            return self.weight.to(dtype) * self.weight_scale.to(dtype)[:, None]

        def forward(self, x):
            bias = self.bias.to(x.dtype) if self.bias is not None else None
            return F.linear(x, self.dequantized_weight(x.dtype), bias)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, int8 weight-only"

    return Int8Linear





def default_int8_filter(name: str, lin) -> bool:
    return True


def int8_targets(unet, filter: Callable | None = None) -> list[str]:
    from torch import nn

    filter = filter or default_int8_filter
    return [n for n, m in unet.named_modules() if type(m) is nn.Linear and filter(n, m)]


def quantize_int8(unet, filter: Callable | None = None, structure_only: bool = False) -> list[str]:
    """Replaces nn.Linear layers by Int8Linear in place; `structure_only` makes empty ones (to load into)."""
    Int8 = int8_linear_class()
    names = int8_targets(unet, filter)
    for name in names:
        lin = unet.get_submodule(name)
        if structure_only:
            new = Int8(lin.in_features, lin.out_features, lin.bias is not None, device=lin.weight.device,
                       dtype=lin.weight.dtype)
        else:
            new = Int8.from_linear(lin)
        replace_submodule(unet, name, new)
    return names


def apply_precision(unet, precision: str, rest_dtype: str | None = None, layers: list[str] | None = None,
                    structure_only: bool = False) -> dict:
    """fp32/fp16/bf16: casts every floating tensor. int8: linear weights to int8, the rest to `rest_dtype`
    (default: unchanged). `layers` (a recorded list) restricts int8 to exactly those layers."""
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    info = {"applied": precision != "fp32" or rest_dtype not in (None, "fp32"), "dtype": precision}
    if precision in ("fp32", "fp16", "bf16"):
        unet.to(torch_dtype(precision))
        return info
    if rest_dtype:
        unet.to(torch_dtype(rest_dtype))
    wanted = set(layers) if layers is not None else None
    names = quantize_int8(unet, (lambda n, m: n in wanted) if wanted is not None else None, structure_only)
    info.update(scheme="int8 weight-only, symmetric per-output-channel", layers=names,
                compute_dtype=rest_dtype or dtype_name(next(unet.parameters()).dtype))
    return info
