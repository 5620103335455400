"""Reads and validates a .safetensors header without loading tensors, so a truncated download is named as such."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from core.errors import CorruptCheckpointError

_MAX_HEADER = 100 * 1024 * 1024
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
                "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8}


@dataclass
class SafetensorsHeader:
    path: Path
    tensors: dict  # name -> {"dtype", "shape", "data_offsets"}
    metadata: dict

    def shape(self, name: str) -> tuple:
        return tuple(self.tensors[name]["shape"])

    @property
    def names(self) -> list[str]:
        return list(self.tensors)


def read_header(path) -> SafetensorsHeader:
    path = Path(path)
    size = path.stat().st_size
    hint = "The file is damaged or incomplete (an interrupted download?). Download it again."
    if size < 8:
        raise CorruptCheckpointError(f"{path.name} is {size} bytes long: too short to be a safetensors file. {hint}")
    with open(path, "rb") as handle:
        (header_len,) = struct.unpack("<Q", handle.read(8))
        if header_len > _MAX_HEADER or header_len + 8 > size:
            raise CorruptCheckpointError(
                f"{path.name} is not a valid safetensors file: its header claims {header_len:,} bytes but the file "
                f"has {size:,}. {hint}"
            )
        raw = handle.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CorruptCheckpointError(f"{path.name} has an unreadable safetensors header. {hint}") from None
    if not isinstance(header, dict):
        raise CorruptCheckpointError(f"{path.name} has a malformed safetensors header. {hint}")
    metadata = header.pop("__metadata__", {}) or {}
    data_size = size - 8 - header_len
    needed = 0
    for name, info in header.items():
        try:
            start, end = info["data_offsets"]
            count = 1
            for dim in info["shape"]:
                count *= int(dim)
            expected = count * _DTYPE_BYTES[info["dtype"]]
        except (KeyError, TypeError, ValueError):
            raise CorruptCheckpointError(f"{path.name}: tensor {name!r} has a malformed header entry. {hint}") from None
        if end - start != expected:
            raise CorruptCheckpointError(f"{path.name}: tensor {name!r} has inconsistent offsets. {hint}")
        needed = max(needed, end)
    if needed > data_size:
        raise CorruptCheckpointError(
            f"{path.name} is truncated: its tensors need {needed:,} bytes of data but only {data_size:,} are present "
            f"({data_size / max(needed, 1):.0%}). {hint}"
        )
    return SafetensorsHeader(path, header, metadata)
