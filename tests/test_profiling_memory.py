"""MemorySampler: a background thread at >= 5 Hz with timestamps, safe to poll while it runs."""

from __future__ import annotations

import mmap
import time

import pytest

from core.profiling import MemorySampler


def test_samples_at_least_five_per_second_with_increasing_timestamps():
    with MemorySampler(interval_s=0.05) as sampler:
        # A fresh anonymous mapping, touched page by page: new resident memory whatever the allocator has cached
        # (a bytearray may be served from pages a long test session already holds, and then RSS does not move).
        ballast = mmap.mmap(-1, 64 * 1024 * 1024)
        for offset in range(0, len(ballast), mmap.PAGESIZE):
            ballast[offset] = 1
        time.sleep(0.6)
        assert sampler.running
        live = sampler.samples()
    samples = sampler.samples()
    assert not sampler.running
    assert len(live) >= 4 and len(samples) >= len(live)
    times = [s.t for s in samples]
    assert times == sorted(times) and times[-1] >= 0.5
    rate = (len(samples) - 1) / (times[-1] - times[0])
    assert rate >= 5.0
    assert all(s.rss_bytes > 0 and s.cuda_allocated_bytes is None for s in samples)
    summary = sampler.summary()
    assert summary["samples"] == len(samples) and summary["peak_rss_bytes"] >= max(s.rss_bytes for s in samples)
    assert max(s.rss_bytes for s in samples) - samples[0].rss_bytes > 32 * 1024 * 1024  # the ballast shows
    ballast.close()


def test_incremental_polling_returns_only_new_samples():
    with MemorySampler(interval_s=0.05) as sampler:
        time.sleep(0.2)
        first = sampler.samples()
        time.sleep(0.2)
        new = sampler.samples(since=len(first))
    assert new and new[0].t > first[-1].t


def test_too_slow_interval_is_refused():
    with pytest.raises(ValueError, match="5 samples per second"):
        MemorySampler(interval_s=0.5)
