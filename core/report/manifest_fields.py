"""The fragment manifest's `quality_eval` and `performance` sections, filled from a report.

Key names follow the roadmap's manifest schema v0 (clip_delta_mean, lpips_mean, ssim_mean, samples;
base/fragment peak memory and latency), plus what the report adds. `clip_delta_mean` is the relative CLIP
drop (0.015 = the fragment scores 1.5% lower than the base), the number H1/H2 are judged on.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.errors import FragmentError
from core.io import write_json_atomic


def quality_eval_from_report(report: dict, report_path=None) -> dict:
    m, clip = report["metrics"], report["quality"].get("clip", {})
    return {
        "clip_delta_mean": m.get("quality.clip_delta_rel"),
        "clip_base_mean": m.get("quality.clip_base_mean"),
        "clip_fragment_mean": m.get("quality.clip_fragment_mean"),
        "clip_model": clip.get("model") if clip.get("available") else None,
        "clip_unavailable_reason": None if clip.get("available") else clip.get("reason"),
        "lpips_mean": m.get("quality.lpips_mean"),
        "lpips_unavailable_reason": None if m.get("quality.lpips_mean") is not None
        else report["quality"].get("lpips", {}).get("reason"),
        "ssim_mean": m.get("quality.ssim_mean"),
        "phash_distance_mean": m.get("quality.phash_distance_mean"),
        "checker_accuracy_base": m.get("quality.checker_accuracy_base"),
        "checker_accuracy_fragment": m.get("quality.checker_accuracy_fragment"),
        "samples": report["quality"].get("samples"),
        "prompts": report["settings"].get("prompts"),
        "seeds": report["settings"].get("seeds"),
        "steps": report["settings"].get("steps"),
        "report_path": None if report_path is None else str(report_path),
        "report_created_utc": report.get("created_utc"),
    }


def performance_from_report(report: dict) -> dict:
    m, env = report["metrics"], report.get("environment", {})
    device = str(env.get("device", "cpu"))
    method = report.get("performance", {}).get("base", {}).get("peak_memory", {}).get("method")
    return {
        "device": device,
        "memory_method": method,
        # The schema's names say VRAM; on a CPU they hold peak RSS-based working memory (see memory_method).
        "base_peak_vram_mb": m.get("memory.base_peak_mb"),
        "fragment_peak_vram_mb": m.get("memory.fragment_peak_mb"),
        "memory_reduction": m.get("memory.reduction"),
        "base_weights_mb": m.get("memory.base_weights_mb"),
        "fragment_weights_mb": m.get("memory.fragment_weights_mb"),
        "base_latency_ms": m.get("performance.base_latency_ms"),
        "fragment_latency_ms": m.get("performance.fragment_latency_ms"),
        "fragment_images_per_min": m.get("performance.fragment_images_per_min"),
        "batch_speedup": m.get("performance.batch_speedup"),
        "break_even_variants": m.get("economics.break_even_variants"),
        "steps": report["settings"].get("steps"),
    }


def write_manifest_sections_json(manifest_path, report: dict, report_path=None) -> dict:
    """Fallback for a manifest that is plain JSON: sets the two sections and rewrites it atomically."""
    manifest_path = Path(manifest_path)
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FragmentError(f"No fragment manifest at {manifest_path}.") from None
    except json.JSONDecodeError as exc:
        raise FragmentError(f"Fragment manifest {manifest_path} is not valid JSON: {exc}") from None
    data["quality_eval"] = quality_eval_from_report(report, report_path)
    data["performance"] = performance_from_report(report)
    write_json_atomic(manifest_path, data)
    return data
