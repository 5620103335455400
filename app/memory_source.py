"""What the memory plot polls: this process's RSS on CPU; allocated/reserved (torch) and NVML used on CUDA.

Only reads counters; torch is consulted only when it is already imported (a model is loaded)."""

from __future__ import annotations

import os
import sys

MB = 2**20


class MemorySource:
    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process(os.getpid())
        self.device = "cpu"

    def __call__(self) -> dict:
        values = {"RSS": self._process.memory_info().rss / MB}
        torch = sys.modules.get("torch")
        if self.device.startswith("cuda") and torch is not None and torch.cuda.is_available():
            values = {"allocated": torch.cuda.memory_allocated() / MB, "reserved": torch.cuda.memory_reserved() / MB}
            used = _nvml_used_mb()
            if used is not None:
                values["NVML used"] = used
        return values


def _nvml_used_mb() -> "float | None":
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        return pynvml.nvmlDeviceGetMemoryInfo(handle).used / MB
    except Exception:  # NVML missing or not usable: the plot shows torch's counters only
        return None
