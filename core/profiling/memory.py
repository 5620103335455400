"""`MemorySampler`: samples memory use in a background thread (default 10 Hz) with timestamps.

On CUDA: torch's allocated / reserved / peak-allocated bytes and the device's used bytes from NVML.
Always: the process RSS (psutil). The GUI's live plot polls `samples()` (a thread-safe snapshot, or only
what is new since an index); reports read `summary()`. Use as a context manager around the work.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class MemorySample:
    t: float  # seconds since the sampler started (monotonic clock)
    rss_bytes: int
    cuda_allocated_bytes: int | None = None
    cuda_reserved_bytes: int | None = None
    cuda_peak_bytes: int | None = None
    nvml_used_bytes: int | None = None

    def to_json(self) -> dict:
        return asdict(self)


class MemorySampler:
    def __init__(self, interval_s: float = 0.1, device=None, max_samples: int = 200_000) -> None:
        if not 0 < interval_s <= 0.2:
            raise ValueError("interval_s must be in (0, 0.2]: the live plot needs at least 5 samples per second.")
        self.interval_s = interval_s
        self.device = device
        self.max_samples = max_samples
        self._samples: list[MemorySample] = []
        self._dropped = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._cuda_index: int | None = None
        self._nvml_handle = None
        self.started_at_unix: float | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> MemorySampler:
        if self._thread is not None:
            raise RuntimeError("This MemorySampler is already running.")
        import psutil

        self._process = psutil.Process()
        self._setup_cuda()
        self._stop.clear()
        self._t0 = time.monotonic()
        self.started_at_unix = time.time()
        self._take()
        self._thread = threading.Thread(target=self._run, name="headroom-memory-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._take()
        if self._nvml_handle is not None:
            try:
                import pynvml

                pynvml.nvmlShutdown()
            except Exception:
                pass
            self._nvml_handle = None

    def __enter__(self) -> MemorySampler:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None

    # -- reading ------------------------------------------------------------------------------------------
    def samples(self, since: int = 0) -> list[MemorySample]:
        """A copy of the samples taken so far (from index `since`, for incremental polling)."""
        with self._lock:
            return list(self._samples[max(0, since - self._dropped):])

    def __len__(self) -> int:
        with self._lock:
            return len(self._samples) + self._dropped

    def summary(self) -> dict:
        samples = self.samples()
        if not samples:
            return {"samples": 0}
        out = {"samples": len(samples), "duration_s": round(samples[-1].t, 3), "interval_s": self.interval_s,
               "peak_rss_bytes": max(s.rss_bytes for s in samples)}
        if samples[-1].cuda_peak_bytes is not None:
            out["cuda_peak_allocated_bytes"] = max(s.cuda_peak_bytes or 0 for s in samples)
            out["cuda_peak_reserved_bytes"] = max(s.cuda_reserved_bytes or 0 for s in samples)
        nvml = [s.nvml_used_bytes for s in samples if s.nvml_used_bytes is not None]
        if nvml:
            out["nvml_peak_used_bytes"] = max(nvml)
        return out

    # -- sampling -----------------------------------------------------------------------------------------
    def _setup_cuda(self) -> None:
        self._cuda_index = None
        device = str(self.device) if self.device is not None else ""
        if not device.startswith("cuda"):
            return
        import torch

        if not torch.cuda.is_available():
            return
        self._cuda_index = torch.device(device).index or 0
        torch.cuda.reset_peak_memory_stats(self._cuda_index)
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml_handle = pynvml.nvmlDeviceGetHandleByIndex(self._cuda_index)
        except Exception:  # no NVML (driver without it, or not an NVIDIA device): torch numbers still work
            self._nvml_handle = None

    def _read(self) -> MemorySample:
        t = time.monotonic() - self._t0
        rss = self._process.memory_info().rss
        if self._cuda_index is None:
            return MemorySample(t, rss)
        import torch

        nvml_used = None
        if self._nvml_handle is not None:
            try:
                import pynvml

                nvml_used = int(pynvml.nvmlDeviceGetMemoryInfo(self._nvml_handle).used)
            except Exception:
                nvml_used = None
        i = self._cuda_index
        return MemorySample(t, rss, torch.cuda.memory_allocated(i), torch.cuda.memory_reserved(i),
                            torch.cuda.max_memory_allocated(i), nvml_used)

    def _take(self) -> None:
        sample = self._read()
        with self._lock:
            self._samples.append(sample)
            if len(self._samples) > self.max_samples:  # keep memory bounded on very long runs
                drop = len(self._samples) - self.max_samples
                del self._samples[:drop]
                self._dropped += drop

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            next_at += self.interval_s
            self._stop.wait(max(0.0, next_at - time.monotonic()))
            if self._stop.is_set():
                break
            self._take()
