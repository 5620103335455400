"""Peak memory of a block of work: CUDA peak allocated on a GPU, peak resident set size (RSS) on the CPU.

On the CPU the peak RSS is sampled by a background thread (psutil), so very short spikes can be missed;
the report records the method next to the number.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

MB = 1024 * 1024


@dataclass
class PeakMemory:
    method: str  # "cuda_max_memory_allocated" or "rss_sampler"
    before_bytes: int = 0
    peak_bytes: int = 0

    @property
    def increase_bytes(self) -> int:
        """How much more memory the work needed above what was in use when it started."""
        return max(0, self.peak_bytes - self.before_bytes)

    def as_dict(self) -> dict:
        return {
            "method": self.method,
            "before_mb": round(self.before_bytes / MB, 3),
            "peak_mb": round(self.peak_bytes / MB, 3),
            "increase_mb": round(self.increase_bytes / MB, 3),
        }


def _is_cuda(device) -> bool:
    return str(device).startswith("cuda")


def release_freed_heap() -> bool:
    """Returns freed C heap pages to the OS (Linux/glibc only); True when it could."""
    import ctypes
    import gc
    import sys

    gc.collect()
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0) or True)
    except (OSError, AttributeError):
        return False


class measure_peak_memory:
    """`with measure_peak_memory(device) as peak: work()`; then read `peak.peak_bytes`."""

    def __init__(self, device="cpu", interval_s: float = 0.002):
        self.device = device
        self.interval_s = interval_s
        self.result = PeakMemory("cuda_max_memory_allocated" if _is_cuda(device) else "rss_sampler")
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self) -> PeakMemory:
        if _is_cuda(self.device):
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.result.before_bytes = torch.cuda.memory_allocated(self.device)
            self.result.peak_bytes = self.result.before_bytes
        else:
            import psutil

            release_freed_heap()
            self._process = psutil.Process()
            self.result.before_bytes = self.result.peak_bytes = self._process.memory_info().rss
            self._thread = threading.Thread(target=self._sample, name="peak-rss-sampler", daemon=True)
            self._thread.start()
        return self.result

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = self._process.memory_info().rss
            if rss > self.result.peak_bytes:
                self.result.peak_bytes = rss
            self._stop.wait(self.interval_s)

    def __exit__(self, *exc) -> None:
        if _is_cuda(self.device):
            import torch

            torch.cuda.synchronize(self.device)
            self.result.peak_bytes = max(self.result.peak_bytes, torch.cuda.max_memory_allocated(self.device))
        else:
            self._stop.set()
            self._thread.join()
            self.result.peak_bytes = max(self.result.peak_bytes, self._process.memory_info().rss)
