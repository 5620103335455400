"""Quick validation of a reused fragment on a new prompt: a few seeds, base vs fragment, SSIM and CLIP delta."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from core.progress import as_sink


@dataclass
class ReuseTolerance:
    ssim_min: float = 0.7  # mean SSIM of fragment vs base images over the validation seeds
    clip_delta_rel_max: float = 0.05  # (base CLIP - fragment CLIP) / |base CLIP|; skipped without a scorer


@dataclass
class ValidationSettings:
    seeds: Sequence[int] = (0, 1)
    steps: int = 10
    guidance: float = 7.5
    tolerance: ReuseTolerance = field(default_factory=ReuseTolerance)


@dataclass
class ValidationResult:
    passed: bool
    reason: str
    ssim_mean: float
    ssim_min: float
    clip_base: float | None = None
    clip_fragment: float | None = None
    clip_delta_rel: float | None = None
    clip_available: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def _ssim(a, b) -> float:
    try:
        from core.quality.metrics import ssim
    except ImportError:  # quality metrics not in this build: the same computation, directly
        import numpy as np
        from skimage.metrics import structural_similarity

        x, y = np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB"))
        return float(structural_similarity(x, y, channel_axis=-1, data_range=255, win_size=7))
    return ssim(a, b)


def images_for(pipe, prompt: str, settings: ValidationSettings, progress=None, token=None) -> list:
    from core.generation import generate_images

    seeds = [int(s) for s in settings.seeds]
    results = generate_images(pipe, [prompt], seeds, steps=settings.steps, guidance=settings.guidance,
                              batch_size=len(seeds), progress=progress, token=token)
    return [image for image, _ in results]


def judge(prompt: str, base_images: list, fragment_images: list, tolerance: ReuseTolerance,
          scorer=None) -> ValidationResult:
    """Compares two image lists made from the same prompt and seeds."""
    import statistics

    ssims = [_ssim(a, b) for a, b in zip(base_images, fragment_images)]
    result = ValidationResult(False, "", statistics.fmean(ssims), min(ssims))
    problems = []
    if result.ssim_mean < tolerance.ssim_min:
        problems.append(f"SSIM {result.ssim_mean:.3f} < {tolerance.ssim_min:.2f}")
    if scorer is not None:
        base = scorer.score(base_images, [prompt] * len(base_images))
        frag = scorer.score(fragment_images, [prompt] * len(fragment_images))
        result.clip_available = True
        result.clip_base, result.clip_fragment = float(statistics.fmean(base)), float(statistics.fmean(frag))
        result.clip_delta_rel = (result.clip_base - result.clip_fragment) / max(abs(result.clip_base), 1e-6)
        if result.clip_delta_rel > tolerance.clip_delta_rel_max:
            problems.append(f"CLIP score {100 * result.clip_delta_rel:.1f}% below the base "
                            f"(> {100 * tolerance.clip_delta_rel_max:.0f}%)")
    clip_text = (f", CLIP delta {100 * result.clip_delta_rel:+.1f}%" if result.clip_available else ", CLIP not available")
    result.passed = not problems
    result.reason = (f"passed: SSIM {result.ssim_mean:.3f}{clip_text}" if result.passed
                     else "failed: " + "; ".join(problems))
    return result


def quick_validate(base_pipe, fragment_pipe, prompt: str, settings: ValidationSettings | None = None,
                   scorer=None, base_images: list | None = None, progress=None, token=None) -> ValidationResult:
    """Generates `prompt` with both pipes on the validation seeds and judges the fragment's images.

    `base_images` may be passed when they are already known (same prompt, seeds and settings)."""
    settings = settings or ValidationSettings()
    sink = as_sink(progress, token)
    start = time.perf_counter()
    sink.report(0, 2, f"validating on {len(settings.seeds)} seeds: base")
    if base_images is None:
        base_images = images_for(base_pipe, prompt, settings, token=sink.token)
    sink.report(1, 2, "validating: fragment")
    fragment_images = images_for(fragment_pipe, prompt, settings, token=sink.token)
    result = judge(prompt, base_images, fragment_images, settings.tolerance, scorer)
    sink.report(2, 2, result.reason)
    result.seconds = time.perf_counter() - start
    return result
