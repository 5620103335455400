"""Performance measurement: peak memory, weight bytes, the throughput sweep stopping at out-of-memory."""

from __future__ import annotations

import pytest

from core.quality.memory import measure_peak_memory
from core.quality.perf import (
    GenerationSettings,
    is_out_of_memory,
    measure_throughput,
    module_weight_bytes,
    resident_weight_bytes,
)


def test_peak_memory_sees_a_large_temporary_allocation():
    import numpy as np

    with measure_peak_memory("cpu") as small:
        np.ones(1024, dtype=np.uint8).sum()
    with measure_peak_memory("cpu") as large:
        block = np.ones(96 * 1024 * 1024, dtype=np.uint8)  # 96 MiB, touched
        block.sum()
        del block
    assert large.increase_bytes > 64 * 1024 * 1024
    assert small.increase_bytes < large.increase_bytes
    assert large.as_dict()["method"] == "rss_sampler"
    assert large.peak_rss_bytes == large.peak_bytes and large.nvml_peak_used_bytes is None  # CPU: RSS only


def test_weight_bytes_count_shared_tensors_once():
    import torch

    lin = torch.nn.Linear(10, 20)  # 200 + 20 float32
    assert module_weight_bytes(lin) == 220 * 4
    tied = torch.nn.Sequential(lin, lin)
    assert module_weight_bytes(tied) == 220 * 4
    assert module_weight_bytes(lin.to(torch.float16)) == 220 * 2


def test_resident_weights_per_component(builtin_pipe):
    weights = resident_weight_bytes(builtin_pipe)
    assert {"unet", "vae", "text_encoder", "total"} <= set(weights)
    assert weights["total"] == sum(v for k, v in weights.items() if k != "total")
    assert weights["unet"] == sum(p.numel() * p.element_size() for p in builtin_pipe.unet.parameters()) + sum(
        b.numel() * b.element_size() for b in builtin_pipe.unet.buffers())


class _RunsOutOfMemoryAt:
    """The real built-in pipeline, except that a batch of `limit` images or more fails like a full GPU."""

    def __init__(self, pipe, limit: int, error=None):
        self._pipe, self.limit, self.calls = pipe, limit, []
        self.error = error

    def __getattr__(self, name):
        return getattr(self._pipe, name)

    def __call__(self, prompts, **kwargs):
        import torch

        self.calls.append(len(prompts))
        if len(prompts) >= self.limit:
            raise self.error or torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self._pipe(prompts, **kwargs)


@pytest.fixture()
def one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two shared cores: one torch thread is far faster than two fighting
    yield
    torch.set_num_threads(threads)


def test_throughput_sweep_stops_at_out_of_memory(builtin_pipe, one_thread):
    pipe = _RunsOutOfMemoryAt(builtin_pipe, limit=4)
    result = measure_throughput(pipe, "a red circle", GenerationSettings(steps=1), max_batch=16)
    assert [p["batch_size"] for p in result["points"]] == [1, 2]
    assert result["stopped"] == "out of memory at batch size 4"
    assert 8 not in pipe.calls and 16 not in pipe.calls  # nothing larger was tried after the failure
    assert result["best_batch_size"] in (1, 2)
    assert result["speedup"] == pytest.approx(result["best_images_per_min"] / result["sequential_images_per_min"])
    assert all(p["images_per_min"] > 0 for p in result["points"])


def test_other_errors_are_not_mistaken_for_out_of_memory(builtin_pipe, one_thread):
    pipe = _RunsOutOfMemoryAt(builtin_pipe, limit=2, error=ValueError("bad prompt"))
    with pytest.raises(ValueError, match="bad prompt"):
        measure_throughput(pipe, "a red circle", GenerationSettings(steps=1), max_batch=4)
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
