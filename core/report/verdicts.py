"""H1-H5 verdicts with the roadmap's thresholds. A hypothesis without a measurement never passes.

Thresholds (roadmap, "Success Metrics"):
- H1 a prunable head subset at <= 2% CLIP delta (relative CLIP score drop of the fragment, heads removed > 0)
- H2 >= 25% memory reduction (1 - fragment peak / base peak) at < 5% quality delta (relative CLIP drop);
  stretch >= 40%
- H3 paraphrase pass rate >= 70% (initial); >= 80% (stable)
- H4 batch speedup (best batched throughput / sequential throughput) >= 1.7x
- H5 break-even <= 10 variants ("never" fails)
"""

from __future__ import annotations

PASS, FAIL, NOT_MEASURED = "PASS", "FAIL", "NOT MEASURED"

H1_MAX_CLIP_DELTA = 0.02
H2_MIN_MEMORY_REDUCTION = 0.25
H2_STRETCH_MEMORY_REDUCTION = 0.40
H2_MAX_QUALITY_DELTA = 0.05
H3_MIN_PASS_RATE = 0.70
H3_STABLE_PASS_RATE = 0.80
H4_MIN_BATCH_SPEEDUP = 1.7
H5_MAX_BREAK_EVEN = 10.0

STATEMENTS = {
    "H1": "A prunable head subset exists at <= 2% CLIP delta",
    "H2": ">= 25% memory reduction at < 5% quality delta",
    "H3": "A fragment is reused across paraphrases: pass rate >= 70% (80% stable)",
    "H4": "Batch speedup >= 1.7x",
    "H5": "Break-even at <= 10 variants",
}


def _verdict(hid: str, threshold: str, measured, verdict: str, reason: str, **extra) -> dict:
    if measured is None and verdict != NOT_MEASURED:
        raise AssertionError("a hypothesis without a measurement cannot pass or fail")
    return {"id": hid, "statement": STATEMENTS[hid], "threshold": threshold, "measured": measured,
            "verdict": verdict, "reason": reason, **extra}


def _number(value) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def verdict_h1(clip_delta_rel, heads_removed, samples=None, quality_invalid: str = "") -> dict:
    threshold = f"relative CLIP delta <= {H1_MAX_CLIP_DELTA:.0%} with at least one head removed"
    delta = _number(clip_delta_rel)
    if quality_invalid:
        return _verdict("H1", threshold, None, NOT_MEASURED, quality_invalid)
    if delta is None:
        return _verdict("H1", threshold, None, NOT_MEASURED, "no CLIP delta was measured")
    if heads_removed is None:
        return _verdict("H1", threshold, None, NOT_MEASURED,
                        "how many heads the fragment removes is unknown", clip_delta_rel=delta)
    if heads_removed <= 0:
        return _verdict("H1", threshold, None, NOT_MEASURED,
                        "the fragment removes no heads, so it says nothing about a prunable subset",
                        clip_delta_rel=delta, heads_removed=heads_removed)
    ok = delta <= H1_MAX_CLIP_DELTA
    over = f" over {samples} images" if samples else ""
    return _verdict("H1", threshold, delta, PASS if ok else FAIL,
                    f"CLIP delta {delta:+.2%}{over} with {heads_removed} heads removed", heads_removed=heads_removed,
                    samples=samples)


def verdict_h2(memory_reduction, quality_delta, quality_invalid: str = "") -> dict:
    threshold = f"memory reduction >= {H2_MIN_MEMORY_REDUCTION:.0%} at quality delta < {H2_MAX_QUALITY_DELTA:.0%}"
    reduction, delta = _number(memory_reduction), _number(quality_delta)
    if reduction is None:
        return _verdict("H2", threshold, None, NOT_MEASURED, "peak memory was not measured for both models")
    if quality_invalid:
        return _verdict("H2", threshold, None, NOT_MEASURED,
                        f"memory reduction {reduction:.1%}, but {quality_invalid}", memory_reduction=reduction)
    if delta is None:
        return _verdict("H2", threshold, None, NOT_MEASURED,
                        f"memory reduction {reduction:.1%} but no quality (CLIP) delta was measured",
                        memory_reduction=reduction)
    ok = reduction >= H2_MIN_MEMORY_REDUCTION and delta < H2_MAX_QUALITY_DELTA
    stretch = reduction >= H2_STRETCH_MEMORY_REDUCTION and delta < H2_MAX_QUALITY_DELTA
    return _verdict("H2", threshold, reduction, PASS if ok else FAIL,
                    f"memory reduction {reduction:.1%} at quality delta {delta:+.2%}",
                    quality_delta=delta, stretch_40pct=stretch)


def verdict_h3(pass_rate) -> dict:
    threshold = f"paraphrase pass rate >= {H3_MIN_PASS_RATE:.0%} (stable: >= {H3_STABLE_PASS_RATE:.0%})"
    rate = _number(pass_rate)
    if rate is None:
        return _verdict("H3", threshold, None, NOT_MEASURED,
                        "no reuse evaluation given (headroom reuse-eval ... then --reuse-eval FILE)")
    level = "stable" if rate >= H3_STABLE_PASS_RATE else "initial" if rate >= H3_MIN_PASS_RATE else "below"
    return _verdict("H3", threshold, rate, PASS if rate >= H3_MIN_PASS_RATE else FAIL,
                    f"paraphrase pass rate {rate:.0%} ({level})", level=level)


def verdict_h4(batch_speedup, batch_size=None) -> dict:
    threshold = f"best batched throughput / sequential throughput >= {H4_MIN_BATCH_SPEEDUP}x"
    speedup = _number(batch_speedup)
    if speedup is None:
        return _verdict("H4", threshold, None, NOT_MEASURED, "batch throughput was not measured")
    where = f" at batch size {batch_size}" if batch_size else ""
    return _verdict("H4", threshold, speedup, PASS if speedup >= H4_MIN_BATCH_SPEEDUP else FAIL,
                    f"batch speedup {speedup:.2f}x{where}", batch_size=batch_size)


def verdict_h5(break_even) -> dict:
    """`break_even`: a number of variants, the string "never", or None (not measured)."""
    threshold = f"break-even <= {H5_MAX_BREAK_EVEN:g} variants"
    if break_even == "never":
        return _verdict("H5", threshold, "never", FAIL, "the fragment is not faster, so it never pays back")
    n = _number(break_even)
    if n is None:
        return _verdict("H5", threshold, None, NOT_MEASURED,
                        "profile/extract time or latencies unknown, so break-even was not computed")
    return _verdict("H5", threshold, n, PASS if n <= H5_MAX_BREAK_EVEN else FAIL, f"break-even after {n:.1f} images")


def all_verdicts(*, clip_delta_rel=None, heads_removed=None, memory_reduction=None, quality_delta=None,
                 paraphrase_pass_rate=None, batch_speedup=None, batch_size=None, break_even=None,
                 clip_samples=None, quality_invalid: str = "") -> list:
    """`quality_invalid`: why the quality numbers cannot judge anything (e.g. an untrained model)."""
    return [
        verdict_h1(clip_delta_rel, heads_removed, clip_samples, quality_invalid),
        verdict_h2(memory_reduction, quality_delta, quality_invalid),
        verdict_h3(paraphrase_pass_rate),
        verdict_h4(batch_speedup, batch_size),
        verdict_h5(break_even),
    ]
