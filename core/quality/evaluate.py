"""Base model vs fragment on the same prompts and seeds: images, quality metrics and performance.

`evaluate_pair` is a plain compute function (progress sink + cancel token, no threads). It returns the
raw measurements; `core.report` turns them into the versioned report and the hypothesis verdicts.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.progress import as_sink
from core.quality.metrics import Availability, ClipScorer, lpips_availability, phash_distance, ssim
from core.quality.perf import (
    GenerationSettings,
    batch_speedup,
    generate,
    measure_latency_pair,
    measure_peak_pair,
    measure_profiling_overhead,
    measure_throughput,
    resident_weight_bytes,
)

DEFAULT_BUILTIN_PROMPTS = (
    "a red circle",
    "a blue square on the left",
    "a large green triangle",
    "a small yellow circle at the top",
)
DEFAULT_SEEDS = (0, 1)


@dataclass
class EvalConfig:
    prompts: Sequence[str] = DEFAULT_BUILTIN_PROMPTS
    seeds: Sequence[int] = DEFAULT_SEEDS
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    latency_repeats: int = 3
    max_batch: int = 8  # throughput sweep: 1, 2, 4, ... up to this, or until out of memory
    measure_performance: bool = True
    measure_profiling_overhead: bool = True  # with performance: profiled vs plain generation of the base
    scenes: Sequence | None = None  # built-in model: the scene each prompt describes (scene checker)


@dataclass
class PairEvaluation:
    samples: list  # one dict per (prompt, seed): prompt, seed, ssim, phash_distance, clip_base, clip_fragment
    base_images: list
    fragment_images: list
    clip: dict
    lpips: dict
    quality: dict
    performance: dict


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _accuracy(flags):
    judged = [f for f in flags or () if f is not None]
    return sum(judged) / len(judged) if judged else None


def summarize_clip(base_scores, fragment_scores, status: Availability, scorer: ClipScorer | None) -> dict:
    if base_scores is None:
        return {"available": False, "reason": status.reason}
    base_mean, fragment_mean = _mean(base_scores), _mean(fragment_scores)
    delta = base_mean - fragment_mean
    return {
        "available": True,
        "reason": status.reason,
        **(scorer.describe() if scorer else {}),
        "base_mean": base_mean,
        "fragment_mean": fragment_mean,
        # positive = the fragment agrees less with the prompts than the base model
        "delta_mean": delta,
        # A relative drop needs base images that match their prompts (positive cosine); else it is noise.
        "delta_rel": delta / base_mean if base_mean > 0 else None,
        "delta_rel_reason": "" if base_mean > 0 else
        f"the base images do not match their prompts (mean CLIP score {base_mean:.2f} <= 0)",
        "samples": len(base_scores),
        # spread of the per-sample drop: with few samples a small mean delta can be noise
        "delta_std": statistics.stdev(b - f for b, f in zip(base_scores, fragment_scores))
        if len(base_scores) > 1 else None,
    }


def quality_of_images(prompts_per_image, base_images, fragment_images, scorer: ClipScorer | None,
                      clip_status: Availability, seeds_per_image=None, scenes_per_image=None):
    """Per-sample SSIM / pHash / CLIP and their summary for two equally long image lists."""
    if len(base_images) != len(fragment_images):
        raise ValueError("base and fragment image lists differ in length")
    base_scores = fragment_scores = None
    if scorer is not None:
        base_scores = list(scorer.score(base_images, prompts_per_image))
        fragment_scores = list(scorer.score(fragment_images, prompts_per_image))
    checks_base = checks_fragment = None
    if scenes_per_image is not None:
        from core.quality.scene_check import scene_checks

        judged = [i for i, scene in enumerate(scenes_per_image) if scene is not None]
        checks_base, checks_fragment = [None] * len(base_images), [None] * len(base_images)
        scenes = [scenes_per_image[i] for i in judged]
        for i, ok in zip(judged, scene_checks([base_images[i] for i in judged], scenes)):
            checks_base[i] = ok
        for i, ok in zip(judged, scene_checks([fragment_images[i] for i in judged], scenes)):
            checks_fragment[i] = ok
    samples = []
    for i, (a, b) in enumerate(zip(base_images, fragment_images)):
        samples.append({
            "prompt": prompts_per_image[i],
            "seed": None if seeds_per_image is None else int(seeds_per_image[i]),
            "ssim": ssim(a, b),
            "phash_distance": phash_distance(a, b),
            "clip_base": None if base_scores is None else float(base_scores[i]),
            "clip_fragment": None if fragment_scores is None else float(fragment_scores[i]),
            "scene_ok_base": None if checks_base is None else checks_base[i],
            "scene_ok_fragment": None if checks_fragment is None else checks_fragment[i],
        })
    ssims = [s["ssim"] for s in samples]
    hashes = [s["phash_distance"] for s in samples]
    quality = {
        "samples": len(samples),
        "ssim_mean": _mean(ssims),
        "ssim_min": min(ssims) if ssims else None,
        "phash_distance_mean": _mean(hashes),
        "phash_distance_max": max(hashes) if hashes else None,
        "checker_accuracy_base": _accuracy(checks_base),
        "checker_accuracy_fragment": _accuracy(checks_fragment),
        "checker_samples": 0 if checks_base is None else sum(c is not None for c in checks_base),
    }
    return samples, summarize_clip(base_scores, fragment_scores, clip_status, scorer), quality


def evaluate_pair(base_pipe, fragment_pipe, config: EvalConfig, scorer: ClipScorer | None = None,
                  clip_status: Availability | None = None, lpips_weights=None,
                  progress=None, token=None) -> PairEvaluation:
    sink = as_sink(progress, token)
    prompts, seeds = list(config.prompts), [int(s) for s in config.seeds]
    if not prompts or not seeds:
        raise ValueError("At least one prompt and one seed are needed to compare a fragment with its base.")
    clip_status = clip_status or Availability(scorer is not None, "" if scorer else "no CLIP scorer given")
    steps_total = 2 * len(prompts) + (5 if config.measure_performance else 0) + 1
    done = 0
    scenes = list(config.scenes) if config.scenes is not None else None
    if scenes is not None and len(scenes) != len(prompts):
        raise ValueError(f"{len(scenes)} scenes for {len(prompts)} prompts: give one scene per prompt.")
    base_images, fragment_images, image_prompts, image_seeds, image_scenes = [], [], [], [], []
    for index, prompt in enumerate(prompts):
        for which, pipe, bucket in (("base", base_pipe, base_images), ("fragment", fragment_pipe, fragment_images)):
            sink.report(done, steps_total, f"{which}: {prompt!r}")
            bucket.extend(generate(pipe, [prompt] * len(seeds), seeds, config.settings))
            done += 1
        image_prompts.extend([prompt] * len(seeds))
        image_seeds.extend(seeds)
        if scenes is not None:
            image_scenes.extend([scenes[index]] * len(seeds))
    sink.report(done, steps_total, "scoring images")
    samples, clip, quality = quality_of_images(image_prompts, base_images, fragment_images, scorer, clip_status,
                                               image_seeds, image_scenes if scenes is not None else None)
    done += 1
    performance = {}
    if config.measure_performance:
        sink.report(done, steps_total, "latency (base and fragment alternately)")
        latencies = dict(zip(("base", "fragment"), measure_latency_pair(
            base_pipe, fragment_pipe, prompts[0], seeds[0], config.settings, repeats=config.latency_repeats)))
        done += 1
        sink.report(done, steps_total, "peak memory (base and fragment alternately)")
        peaks = dict(zip(("base", "fragment"), measure_peak_pair(
            base_pipe, fragment_pipe, prompts[0], seeds[0], config.settings)))
        done += 1
        for which, pipe in (("base", base_pipe), ("fragment", fragment_pipe)):
            sink.report(done, steps_total, f"{which}: throughput")
            throughput = measure_throughput(pipe, prompts[0], config.settings, max_batch=config.max_batch,
                                            token=sink.token)
            done += 1
            performance[which] = {
                "latency_ms": latencies[which]["median_ms"],
                "latency": latencies[which],
                "peak_memory": peaks[which],
                "weights_bytes": resident_weight_bytes(pipe),
                "throughput": throughput,
                "batch_speedup": batch_speedup(throughput["best_images_per_min"],
                                               throughput["sequential_images_per_min"]),
            }
    if config.measure_performance and config.measure_profiling_overhead:
        sink.report(done, steps_total, "profiling overhead")
        try:
            performance["profiling_overhead"] = measure_profiling_overhead(
                base_pipe, prompts[0], seeds[0], config.settings)
        except ImportError as exc:
            performance["profiling_overhead"] = {"overhead": None, "reason": f"profiler not in this build: {exc}"}
    sink.report(steps_total, steps_total, "evaluation done")
    return PairEvaluation(samples, base_images, fragment_images, clip,
                          lpips_availability(lpips_weights).as_dict(), quality, performance)
