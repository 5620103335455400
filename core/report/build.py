"""Assembles the versioned report from a base-vs-fragment evaluation plus what is known about the fragment.

Layout (REPORT_SCHEMA_VERSION 1):
  schema, report_schema_version, created_utc, headroom_version, environment, model, fragment, settings,
  metrics: {key: value}            flat, one key per number (see METRICS); None = not measured
  metric_notes: {key: reason}      why a metric is missing / how it was measured
  checklist: [...]                 the roadmap's Metrics Collection Checklist, one row each
  quality / performance / reuse / economics   the detailed measurements behind the flat metrics
  samples: [...]                   per (prompt, seed) SSIM / pHash / CLIP
  hypotheses: [...]                H1-H5 verdicts
"""

from __future__ import annotations

import datetime as _dt
import platform

from core.quality.memory import MB
from core.quality.perf import break_even
from core.report.verdicts import all_verdicts

REPORT_SCHEMA = "headroom.report"
REPORT_SCHEMA_VERSION = 1

# key -> (unit, label)
METRICS = {
    "quality.clip_base_mean": ("score", "CLIP score, base"),
    "quality.clip_fragment_mean": ("score", "CLIP score, fragment"),
    "quality.clip_delta_rel": ("fraction", "CLIP delta (relative drop)"),
    "quality.lpips_mean": ("distance", "LPIPS"),
    "quality.ssim_mean": ("index", "SSIM base vs fragment"),
    "quality.phash_distance_mean": ("bits", "pHash distance"),
    "quality.checker_accuracy_base": ("fraction", "scene checker accuracy, base"),
    "quality.checker_accuracy_fragment": ("fraction", "scene checker accuracy, fragment"),
    "performance.base_latency_ms": ("ms", "latency, base"),
    "performance.fragment_latency_ms": ("ms", "latency, fragment"),
    "performance.latency_ratio": ("x", "latency fragment / base"),
    "performance.base_images_per_min": ("img/min", "throughput, base (best batch)"),
    "performance.fragment_images_per_min": ("img/min", "throughput, fragment (best batch)"),
    "performance.batch_speedup": ("x", "batch speedup, fragment"),
    "performance.profiling_overhead": ("fraction", "profiling overhead"),
    "memory.base_peak_mb": ("MB", "peak memory, base"),
    "memory.fragment_peak_mb": ("MB", "peak memory, fragment"),
    "memory.reduction": ("fraction", "peak memory reduction"),
    "memory.base_weights_mb": ("MB", "resident weights, base"),
    "memory.fragment_weights_mb": ("MB", "resident weights, fragment"),
    "memory.weights_reduction": ("fraction", "resident weights reduction"),
    "reuse.fragment_hit_rate": ("fraction", "fragment hit rate"),
    "reuse.paraphrase_pass_rate": ("fraction", "paraphrase pass rate"),
    "economics.break_even_variants": ("images", "break-even N"),
}

# The roadmap's Metrics Collection Checklist: (category, metric, keys that answer it).
CHECKLIST = (
    ("Quality", "CLIP text-image similarity", ("quality.clip_base_mean", "quality.clip_fragment_mean",
                                               "quality.clip_delta_rel")),
    ("Quality", "LPIPS", ("quality.lpips_mean",)),
    ("Quality", "SSIM", ("quality.ssim_mean",)),
    ("Quality", "Perceptual hash distance", ("quality.phash_distance_mean",)),
    ("Performance", "Single image latency (ms)", ("performance.base_latency_ms", "performance.fragment_latency_ms",
                                                  "performance.latency_ratio")),
    ("Performance", "Batch throughput (img/min)", ("performance.base_images_per_min",
                                                   "performance.fragment_images_per_min",
                                                   "performance.batch_speedup")),
    ("Performance", "Profiling overhead (%)", ("performance.profiling_overhead",)),
    ("Memory", "Peak memory (MB)", ("memory.base_peak_mb", "memory.fragment_peak_mb", "memory.reduction")),
    ("Memory", "Resident weight size (MB)", ("memory.base_weights_mb", "memory.fragment_weights_mb",
                                             "memory.weights_reduction")),
    ("Reuse", "Fragment hit rate (%)", ("reuse.fragment_hit_rate",)),
    ("Reuse", "Paraphrase pass rate", ("reuse.paraphrase_pass_rate",)),
    ("Economics", "Break-even variants N", ("economics.break_even_variants",)),
)

# Measured beyond the roadmap's checklist.
EXTRA_ROWS = (
    ("Quality (built-in)", "Scene checker accuracy", ("quality.checker_accuracy_base",
                                                      "quality.checker_accuracy_fragment")),
)


def _find_number(data, names) -> float | None:
    """First numeric value under any of `names`, searched depth-first through nested dicts."""
    if not isinstance(data, dict):
        return None
    for name in names:
        value = data.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    for value in data.values():
        if isinstance(value, dict):
            found = _find_number(value, names)
            if found is not None:
                return found
    return None


PROFILE_TIME_KEYS = ("profile_s", "profile_seconds", "profiling_s", "profiling_seconds", "profile_time_s")
EXTRACT_TIME_KEYS = ("extract_s", "extract_seconds", "extraction_s", "extraction_seconds", "extract_time_s")
OVERHEAD_KEYS = ("profiling_overhead", "overhead_fraction", "profiling_overhead_fraction")


def reuse_numbers(reuse_eval: dict | None, model_hash: str | None = None) -> dict:
    """Paraphrase pass rate and fragment (lookup) hit rate from a `headroom reuse-eval` JSON (fractions 0..1).
    A reuse evaluation of another model does not count for this one."""
    out = {"paraphrase_pass_rate": None, "fragment_hit_rate": None, "mismatch": None}
    if not reuse_eval:
        return out
    eval_hash = (reuse_eval.get("model") or {}).get("hash")
    if model_hash and eval_hash and eval_hash != model_hash:
        out["mismatch"] = f"the reuse evaluation is of model {eval_hash[:12]}..., not this model ({model_hash[:12]}...)"
        return out
    out["paraphrases_tested"] = reuse_eval.get("paraphrases_tested")
    out["similarity_metric"] = reuse_eval.get("similarity_metric")
    for key, names in (("paraphrase_pass_rate", ("paraphrase_pass_rate", "pass_rate")),
                       ("fragment_hit_rate", ("fragment_hit_rate", "lookup_hit_rate", "hit_rate"))):
        value = _find_number(reuse_eval, names)
        if value is not None and value > 1.0:  # given in percent
            value /= 100.0
        out[key] = value
    return out


def _reduction(base, fragment):
    if not base or fragment is None:
        return None
    return 1.0 - fragment / base


def environment(device: str) -> dict:
    import torch

    env = {"device": device, "python": platform.python_version(), "platform": platform.platform(),
           "torch": torch.__version__, "cpu_threads": torch.get_num_threads()}
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def build_report(evaluation, *, model: dict, fragment: dict, settings: dict, device: str = "cpu",
                 profile_s: float | None = None, extract_s: float | None = None,
                 profiling_overhead: float | None = None, heads_removed: int | None = None,
                 reuse_eval: dict | None = None, reuse_source: str | None = None) -> dict:
    """`evaluation`: a `core.quality.evaluate.PairEvaluation`. `fragment` may carry a `manifest` dict, from
    which profile/extract times and the profiling overhead are read when not given."""
    from core import __version__ as headroom_version

    manifest = fragment.get("manifest") or {}
    if profile_s is None:
        profile_s = _find_number(manifest, PROFILE_TIME_KEYS)
    if extract_s is None:
        extract_s = _find_number(manifest, EXTRACT_TIME_KEYS)
    if profiling_overhead is None:
        profiling_overhead = _find_number(manifest, OVERHEAD_KEYS)

    clip, perf, quality = evaluation.clip, evaluation.performance, evaluation.quality
    base, frag = perf.get("base", {}), perf.get("fragment", {})
    notes = {}
    metrics = {key: None for key in METRICS}
    if clip.get("available"):
        metrics["quality.clip_base_mean"] = clip["base_mean"]
        metrics["quality.clip_fragment_mean"] = clip["fragment_mean"]
        metrics["quality.clip_delta_rel"] = clip["delta_rel"]
    for key in ("quality.clip_base_mean", "quality.clip_fragment_mean", "quality.clip_delta_rel"):
        notes[key] = ("unavailable: " if not clip.get("available") else "") + clip.get("reason", "")
    if clip.get("available") and metrics["quality.clip_delta_rel"] is None:
        notes["quality.clip_delta_rel"] = "not computed: " + clip.get("delta_rel_reason", "")
    notes["quality.lpips_mean"] = "unavailable: " + evaluation.lpips.get("reason", "")
    metrics["quality.ssim_mean"] = quality["ssim_mean"]
    metrics["quality.phash_distance_mean"] = quality["phash_distance_mean"]
    metrics["quality.checker_accuracy_base"] = quality.get("checker_accuracy_base")
    metrics["quality.checker_accuracy_fragment"] = quality.get("checker_accuracy_fragment")
    if metrics["quality.checker_accuracy_base"] is None:
        for key in ("quality.checker_accuracy_base", "quality.checker_accuracy_fragment"):
            notes[key] = ("only for the built-in model, on prompts that name a colour and a shape for every "
                          "object (judged by the shapes checker)")
    else:
        for key in ("quality.checker_accuracy_base", "quality.checker_accuracy_fragment"):
            notes[key] = f"{quality.get('checker_samples')} of {quality['samples']} images judged by the shapes checker"

    if base and frag:
        metrics["performance.base_latency_ms"] = base["latency_ms"]
        metrics["performance.fragment_latency_ms"] = frag["latency_ms"]
        if base["latency_ms"]:
            metrics["performance.latency_ratio"] = frag["latency_ms"] / base["latency_ms"]
        metrics["performance.base_images_per_min"] = base["throughput"]["best_images_per_min"]
        metrics["performance.fragment_images_per_min"] = frag["throughput"]["best_images_per_min"]
        metrics["performance.batch_speedup"] = frag["batch_speedup"]
        metrics["memory.base_peak_mb"] = base["peak_memory"]["working_mb"]
        metrics["memory.fragment_peak_mb"] = frag["peak_memory"]["working_mb"]
        metrics["memory.reduction"] = _reduction(metrics["memory.base_peak_mb"], metrics["memory.fragment_peak_mb"])
        metrics["memory.base_weights_mb"] = base["weights_bytes"]["total"] / MB
        metrics["memory.fragment_weights_mb"] = frag["weights_bytes"]["total"] / MB
        metrics["memory.weights_reduction"] = _reduction(metrics["memory.base_weights_mb"],
                                                          metrics["memory.fragment_weights_mb"])
        method = base["peak_memory"]["method"]
        for key in ("memory.base_peak_mb", "memory.fragment_peak_mb", "memory.reduction"):
            notes[key] = (f"{method}: weights + increase over the memory in use before one image"
                          + (" (RSS sampled every 2 ms)" if method == "rss_sampler" else ""))
    else:
        for key in METRICS:
            if key.startswith(("performance.", "memory.")):
                notes[key] = "performance was not measured (--no-perf)"

    measured_overhead = (perf.get("profiling_overhead") or {}).get("overhead")
    if profiling_overhead is None and measured_overhead is not None:
        profiling_overhead = measured_overhead
        notes["performance.profiling_overhead"] = (
            "measured: profiled vs plain generation of the base model, same prompt/seed/steps")
    metrics["performance.profiling_overhead"] = profiling_overhead
    if profiling_overhead is None:
        notes["performance.profiling_overhead"] = (perf.get("profiling_overhead") or {}).get(
            "reason", "not measured (performance skipped) and not recorded in the fragment's manifest")

    reuse = reuse_numbers(reuse_eval, model.get("hash"))
    metrics["reuse.paraphrase_pass_rate"] = reuse["paraphrase_pass_rate"]
    metrics["reuse.fragment_hit_rate"] = reuse["fragment_hit_rate"]
    for key in ("reuse.paraphrase_pass_rate", "reuse.fragment_hit_rate"):
        if reuse["mismatch"]:
            notes[key] = "not used: " + reuse["mismatch"]
        elif metrics[key] is None:
            notes[key] = ("not in the reuse evaluation " + reuse_source if reuse_source
                          else "no reuse evaluation given (--reuse-eval FILE from headroom reuse-eval)")
        else:
            notes[key] = f"from {reuse_source}" + (
                f" ({reuse['paraphrases_tested']} paraphrases)" if reuse.get("paraphrases_tested") else "")

    be = break_even(profile_s, extract_s, metrics["performance.base_latency_ms"],
                    metrics["performance.fragment_latency_ms"])
    economics = {"profile_s": profile_s, "extract_s": extract_s}
    if be is None:
        notes["economics.break_even_variants"] = (
            "needs profile and extract times (manifest or --profile-seconds/--extract-seconds) and both latencies")
        economics["break_even"] = None
    else:
        metrics["economics.break_even_variants"] = "never" if be.never else be.variants
        notes["economics.break_even_variants"] = be.reason
        economics["break_even"] = be.as_dict()

    quality_delta = metrics["quality.clip_delta_rel"]
    hypotheses = all_verdicts(
        clip_delta_rel=metrics["quality.clip_delta_rel"], heads_removed=heads_removed,
        memory_reduction=metrics["memory.reduction"], quality_delta=quality_delta,
        paraphrase_pass_rate=metrics["reuse.paraphrase_pass_rate"],
        batch_speedup=metrics["performance.batch_speedup"],
        batch_size=frag.get("throughput", {}).get("best_batch_size") if frag else None,
        break_even=metrics["economics.break_even_variants"], clip_samples=clip.get("samples"),
        quality_invalid=("the model has untrained stand-in weights: its images match no prompt"
                         if model.get("trained") is False else clip.get("delta_rel_reason", "")),
    )

    checklist = []
    for category, name, keys in CHECKLIST + EXTRA_ROWS:
        values = {k: metrics[k] for k in keys}
        measured = any(v is not None for v in values.values())
        checklist.append({
            "category": category, "metric": name, "values": values,
            "status": "measured" if measured else (
                "unavailable" if any(notes.get(k, "").startswith("unavailable") for k in keys) else "not measured"),
            "note": "; ".join(dict.fromkeys(notes[k] for k in keys if notes.get(k))),
        })

    return {
        "schema": REPORT_SCHEMA,
        "report_schema_version": REPORT_SCHEMA_VERSION,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "headroom_version": headroom_version,
        "environment": environment(device),
        "model": model,
        "fragment": {k: v for k, v in fragment.items() if k != "manifest"} | {"heads_removed": heads_removed},
        "settings": settings,
        "metrics": metrics,
        "metric_notes": notes,
        "checklist": checklist,
        "quality": {**quality, "clip": clip, "lpips": evaluation.lpips},
        "performance": perf,
        "reuse": {**reuse, "source": reuse_source},
        "economics": economics,
        "samples": evaluation.samples,
        "hypotheses": hypotheses,
    }
