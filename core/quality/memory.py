"""Peak memory of a block of work: CUDA peak allocated on a GPU, peak resident set size (RSS) on the CPU.

On the CPU the peak RSS is sampled every 2 ms (core.profiling.MemorySampler, psutil), so very short spikes
can be missed; the report records the method next to the number. Before a CPU measurement, freed heap memory
is handed back to the system (glibc `malloc_trim`): otherwise memory freed by an earlier run hides this run's
increase. Two pipelines in one process are compared by `working` memory = own weights + increase.
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024


@dataclass
class PeakMemory:
    method: str  # "cuda_max_memory_allocated" or "rss_sampler"
    before_bytes: int = 0
    peak_bytes: int = 0
    peak_rss_bytes: int | None = None  # the process, whatever the device
    nvml_peak_used_bytes: int | None = None  # the whole GPU as nvidia-smi sees it (other processes included)

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
            "peak_rss_mb": None if self.peak_rss_bytes is None else round(self.peak_rss_bytes / MB, 3),
            "nvml_peak_used_mb": None if self.nvml_peak_used_bytes is None
            else round(self.nvml_peak_used_bytes / MB, 3),
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
    """`with measure_peak_memory(device) as peak: work()`; then read `peak.peak_bytes`.

    Sampling is done by the profiler's `core.profiling.MemorySampler` (RSS always; torch's allocated and
    peak-allocated bytes on CUDA), started after freed heap memory was returned to the system."""

    def __init__(self, device="cpu", interval_s: float = 0.002):
        self.device = str(device)
        self.interval_s = interval_s
        self.result = PeakMemory("cuda_max_memory_allocated" if _is_cuda(self.device) else "rss_sampler")
        self._sampler = None

    def __enter__(self) -> PeakMemory:
        from core.profiling.memory import MemorySampler

        if _is_cuda(self.device):
            import torch

            torch.cuda.synchronize(self.device)
        else:
            release_freed_heap()
        self._sampler = MemorySampler(interval_s=self.interval_s, device=self.device).start()
        first = self._sampler.samples()[0]
        self.result.before_bytes = self._value(first, before=True)
        self.result.peak_bytes = self.result.before_bytes
        return self.result

    def _value(self, sample, before: bool = False) -> int:
        if _is_cuda(self.device):
            return int(sample.cuda_allocated_bytes if before else sample.cuda_peak_bytes)
        return int(sample.rss_bytes)

    def __exit__(self, *exc) -> None:
        if _is_cuda(self.device):
            import torch

            torch.cuda.synchronize(self.device)
        self._sampler.stop()
        samples = self._sampler.samples()
        self.result.peak_bytes = max([self.result.peak_bytes] + [self._value(s) for s in samples])
        summary = self._sampler.summary()
        self.result.peak_rss_bytes = summary.get("peak_rss_bytes")
        self.result.nvml_peak_used_bytes = summary.get("nvml_peak_used_bytes")
