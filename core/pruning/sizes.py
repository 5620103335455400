"""Resident size of a UNet: parameters + buffers, numel * element size. Exact on meta tensors too."""

from __future__ import annotations


def resident_bytes(module) -> int:
    seen = set()
    total = 0
    for t in list(module.parameters()) + list(module.buffers()):
        key = (t.device.type, t.data_ptr()) if t.device.type != "meta" else id(t)
        if key in seen:
            continue
        seen.add(key)
        total += t.numel() * t.element_size()
    return total


def param_count(module) -> int:
    """Number of stored weight values (parameters and buffers such as int8 weights)."""
    return sum(t.numel() for t in module.parameters()) + sum(t.numel() for t in module.buffers())


def snapshot(module) -> dict:
    return {"params": param_count(module), "bytes": resident_bytes(module)}
