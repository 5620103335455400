"""Regression gate: compares a report's metrics with a baseline report's and lists those that drifted
in the bad direction past their tolerance, or that were measured before and are no longer measured."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.errors import HeadRoomError


@dataclass(frozen=True)
class Tolerance:
    better: str  # "lower" or "higher"
    abs: float | None = None  # allowed change in the bad direction, in the metric's unit
    rel: float | None = None  # ... or as a fraction of the baseline value

    def allowed(self, baseline: float) -> float:
        limits = [t for t in (self.abs, None if self.rel is None else self.rel * abs(baseline)) if t is not None]
        return max(limits) if limits else 0.0


DEFAULT_TOLERANCES = {
    "quality.clip_base_mean": Tolerance("higher", abs=0.5),
    "quality.clip_fragment_mean": Tolerance("higher", abs=0.5),
    "quality.clip_delta_rel": Tolerance("lower", abs=0.01),
    "quality.lpips_mean": Tolerance("lower", abs=0.01),
    "quality.ssim_mean": Tolerance("higher", abs=0.02),
    "quality.phash_distance_mean": Tolerance("lower", abs=2.0),
    "quality.checker_accuracy_base": Tolerance("higher", abs=0.13),
    "quality.checker_accuracy_fragment": Tolerance("higher", abs=0.13),
    "performance.base_latency_ms": Tolerance("lower", rel=0.25),
    "performance.fragment_latency_ms": Tolerance("lower", rel=0.25),
    "performance.latency_ratio": Tolerance("lower", abs=0.10),
    "performance.base_images_per_min": Tolerance("higher", rel=0.25),
    "performance.fragment_images_per_min": Tolerance("higher", rel=0.25),
    "performance.batch_speedup": Tolerance("higher", rel=0.15),
    "performance.profiling_overhead": Tolerance("lower", abs=0.10),
    "memory.base_peak_mb": Tolerance("lower", rel=0.10),
    "memory.fragment_peak_mb": Tolerance("lower", rel=0.10),
    "memory.reduction": Tolerance("higher", abs=0.03),
    "memory.base_weights_mb": Tolerance("lower", rel=0.01),
    "memory.fragment_weights_mb": Tolerance("lower", rel=0.01),
    "memory.weights_reduction": Tolerance("higher", abs=0.01),
    "reuse.fragment_hit_rate": Tolerance("higher", abs=0.05),
    "reuse.paraphrase_pass_rate": Tolerance("higher", abs=0.05),
    "economics.break_even_variants": Tolerance("lower", rel=0.25),
}


def parse_tolerance_overrides(items) -> dict:
    """`["metric=0.05", "memory.base_peak_mb=20%"]` -> {metric: Tolerance}: a plain number is absolute,
    a number with % is relative to the baseline value."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or key not in DEFAULT_TOLERANCES:
            raise HeadRoomError(
                f"Bad tolerance {item!r}: write METRIC=NUMBER or METRIC=NUMBER%, METRIC one of: "
                + ", ".join(DEFAULT_TOLERANCES))
        better = DEFAULT_TOLERANCES[key].better
        try:
            out[key] = (Tolerance(better, rel=float(value[:-1]) / 100.0) if value.endswith("%")
                        else Tolerance(better, abs=float(value)))
        except ValueError:
            raise HeadRoomError(f"Bad tolerance {item!r}: {value!r} is not a number.") from None
    return out


def load_report(path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise HeadRoomError(f"Baseline report {path} does not exist.") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise HeadRoomError(f"Baseline report {path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != "headroom.report" or "metrics" not in data:
        raise HeadRoomError(f"{path} is not a HeadRoom report (made by `headroom report`).")
    return data


def compare_metrics(current: dict, baseline: dict, tolerances: dict | None = None) -> dict:
    """Returns {"drifted": [...], "improved": [...], "compared": n}. Each entry: metric, baseline, current,
    change, allowed, why."""
    tol = dict(DEFAULT_TOLERANCES)
    tol.update(tolerances or {})
    drifted, improved, compared = [], [], 0
    for key, rule in tol.items():
        old, new = baseline.get(key), current.get(key)
        if old is None:
            continue
        entry = {"metric": key, "baseline": old, "current": new}
        if new is None:
            drifted.append({**entry, "why": "measured in the baseline, not measured now"})
            continue
        compared += 1
        if old == "never" or new == "never":  # break-even: "never" is worse than any number
            if new == "never" and old != "never":
                drifted.append({**entry, "why": "the fragment no longer pays back (break-even: never)"})
            elif old == "never" and new != "never":
                improved.append({**entry, "why": "the fragment now pays back"})
            continue
        change = float(new) - float(old)
        worse = change if rule.better == "lower" else -change
        allowed = rule.allowed(float(old))
        entry.update(change=change, allowed=allowed)
        if worse > allowed:
            drifted.append({**entry, "why": f"worse by {worse:.4g} (allowed {allowed:.4g}, {rule.better} is better)"})
        elif -worse > allowed:
            improved.append({**entry, "why": f"better by {-worse:.4g}"})
    return {"drifted": drifted, "improved": improved, "compared": compared}


ENVIRONMENT_KEYS = ("device", "gpu", "torch", "cpu_threads", "platform")


def environment_changes(current: dict, baseline: dict) -> list:
    """What differs between the machines/software of two reports: timings only compare on the same setup."""
    now, before = current.get("environment", {}), baseline.get("environment", {})
    changes = [f"{k}: {before.get(k)} -> {now.get(k)}" for k in ENVIRONMENT_KEYS if now.get(k) != before.get(k)]
    old_hash, new_hash = (baseline.get("model") or {}).get("hash"), (current.get("model") or {}).get("hash")
    if old_hash and new_hash and old_hash != new_hash:
        changes.append(f"base model: {old_hash[:12]}... -> {new_hash[:12]}...")
    return changes
