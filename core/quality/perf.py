"""Performance of a pipeline: single-image latency, batch throughput, resident weights, break-even.

All timings generate real images with a fixed number of steps; the same settings are used for the base
and the fragment so the numbers compare.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from core.progress import as_sink
from core.quality.memory import MB, measure_peak_memory


@dataclass
class GenerationSettings:
    steps: int = 8
    guidance: float = 7.5
    height: int | None = None
    width: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def pipe_device(pipe) -> str:
    return str(pipe.unet.device)


def generate(pipe, prompts: Sequence[str], seeds: Sequence[int], settings: GenerationSettings) -> list:
    """One image per (prompt, seed) pair, in one batch; each image gets its own seeded generator so an
    image is the same whatever batch it is made in."""
    import torch

    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    # CPU generators, as the profiler and core.generation use: the same seed gives the same image everywhere.
    generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    kwargs = {}
    if settings.height:
        kwargs["height"] = settings.height
    if settings.width:
        kwargs["width"] = settings.width
    out = pipe(
        list(prompts),
        num_inference_steps=settings.steps,
        guidance_scale=settings.guidance,
        generator=generators,
        output_type="pil",
        **kwargs,
    )
    return list(out.images)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        "out of memory" in text or "can't allocate memory" in text or isinstance(exc, MemoryError)
    )


def _free_after_oom(device: str) -> None:
    import gc

    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def measure_latency(pipe, prompt: str, seed: int, settings: GenerationSettings, repeats: int = 3,
                    warmup: int = 1) -> dict:
    """Wall-clock milliseconds to make one image, after `warmup` untimed runs; median of `repeats`."""
    device = pipe_device(pipe)
    for _ in range(warmup):
        generate(pipe, [prompt], [seed], settings)
    samples = []
    for _ in range(max(1, repeats)):
        _sync(device)
        start = time.perf_counter()
        generate(pipe, [prompt], [seed], settings)
        _sync(device)
        samples.append((time.perf_counter() - start) * 1000.0)
    return {"median_ms": statistics.median(samples), "min_ms": min(samples), "samples_ms": samples}


def measure_latency_pair(base_pipe, fragment_pipe, prompt: str, seed: int, settings: GenerationSettings,
                         repeats: int = 3, warmup: int = 1) -> tuple[dict, dict]:
    """Latency of two pipelines measured alternately (A B A B ...), so a machine that slows down or speeds
    up during the measurement affects both alike."""
    pipes = {"base": base_pipe, "fragment": fragment_pipe}
    for pipe in pipes.values():
        for _ in range(warmup):
            generate(pipe, [prompt], [seed], settings)
    samples = {name: [] for name in pipes}
    for _ in range(max(1, repeats)):
        for name, pipe in pipes.items():
            device = pipe_device(pipe)
            _sync(device)
            start = time.perf_counter()
            generate(pipe, [prompt], [seed], settings)
            _sync(device)
            samples[name].append((time.perf_counter() - start) * 1000.0)
    return tuple({"median_ms": statistics.median(s), "min_ms": min(s), "samples_ms": s}
                 for s in samples.values())


def measure_peak_pair(base_pipe, fragment_pipe, prompt: str, seed: int, settings: GenerationSettings,
                      repeats: int = 3) -> tuple[dict, dict]:
    """`measure_peak` of two pipelines, alternately, before any larger batch has grown the heap."""
    runs = {"base": [], "fragment": []}
    for _ in range(max(1, repeats)):
        for name, pipe in (("base", base_pipe), ("fragment", fragment_pipe)):
            runs[name].append(measure_peak(pipe, prompt, seed, settings, repeats=1))
    return tuple(dict(min(r, key=lambda x: x["working_mb"]), runs=len(r)) for r in runs.values())


def measure_peak(pipe, prompt: str, seed: int, settings: GenerationSettings, repeats: int = 2) -> dict:
    """Peak memory while making one image, plus the pipeline's own weights: `working_mb` = weights +
    the increase above what was in use before, comparable between two pipelines living in one process."""
    device = pipe_device(pipe)
    runs = []
    for _ in range(max(1, repeats)):
        with measure_peak_memory(device) as peak:
            generate(pipe, [prompt], [seed], settings)
        runs.append(peak)
    peak = min(runs, key=lambda p: p.increase_bytes)  # sampling noise only ever adds
    weights = resident_weight_bytes(pipe)["total"]
    result = peak.as_dict()
    result["runs"] = len(runs)
    result["working_mb"] = round((weights + peak.increase_bytes) / MB, 3)
    return result


def measure_throughput(pipe, prompt: str, settings: GenerationSettings, max_batch: int = 8,
                       progress=None, token=None) -> dict:
    """Images per minute when generating a batch of b images at once, for b = 1, 2, 4, ... up to
    `max_batch`, stopping at the first out-of-memory; plus the sequential rate (b runs of one image)."""
    device = pipe_device(pipe)
    sink = as_sink(progress, token)
    sizes = []
    b = 1
    while b <= max_batch:
        sizes.append(b)
        b *= 2
    points, stopped = [], None
    generate(pipe, [prompt], [0], settings)  # warm-up
    for i, size in enumerate(sizes):
        sink.report(i, len(sizes), f"batch of {size}")
        try:
            _sync(device)
            start = time.perf_counter()
            generate(pipe, [prompt] * size, list(range(size)), settings)
            _sync(device)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            _free_after_oom(device)
            stopped = f"out of memory at batch size {size}"
            break
        seconds = time.perf_counter() - start
        points.append({"batch_size": size, "seconds": seconds, "images_per_min": 60.0 * size / seconds})
    if not points:
        return {"points": [], "stopped": stopped, "sequential_images_per_min": None, "best_batch_size": None,
                "best_images_per_min": None, "speedup": None}
    best = max(points, key=lambda p: p["images_per_min"])
    sequential_n = best["batch_size"]
    _sync(device)
    start = time.perf_counter()
    for seed in range(sequential_n):
        sink.check()
        generate(pipe, [prompt], [seed], settings)
    _sync(device)
    sequential = 60.0 * sequential_n / (time.perf_counter() - start)
    sink.report(len(sizes), len(sizes), "throughput measured")
    return {
        "points": points,
        "stopped": stopped or f"reached the largest batch size tried ({sizes[-1]})",
        "sequential_images_per_min": sequential,
        "sequential_images": sequential_n,
        "best_batch_size": best["batch_size"],
        "best_images_per_min": best["images_per_min"],
        "speedup": batch_speedup(best["images_per_min"], sequential),
    }


def batch_speedup(batched_images_per_min: float | None, sequential_images_per_min: float | None):
    if not batched_images_per_min or not sequential_images_per_min:
        return None
    return batched_images_per_min / sequential_images_per_min


def module_weight_bytes(module) -> int:
    """Bytes of a module's parameters and buffers (shared storage counted once)."""
    seen, total = set(), 0
    for tensor in list(module.parameters()) + list(module.buffers()):
        key = (tensor.device, tensor.data_ptr()) if tensor.device.type != "meta" else id(tensor)
        if key in seen:
            continue
        seen.add(key)
        total += tensor.numel() * tensor.element_size()
    return total


def resident_weight_bytes(pipe) -> dict:
    """Weight bytes per pipeline component (unet, vae, text_encoder, ...) and their total."""
    import torch

    result = {}
    for name, component in getattr(pipe, "components", {}).items():
        if isinstance(component, torch.nn.Module):
            result[name] = module_weight_bytes(component)
    result["total"] = sum(result.values())
    return result


@dataclass
class BreakEven:
    variants: float | None  # None = never
    reason: str = ""
    inputs: dict = field(default_factory=dict)

    @property
    def never(self) -> bool:
        return self.variants is None

    def as_dict(self) -> dict:
        return {"variants": self.variants if self.variants is not None else "never", "reason": self.reason,
                **self.inputs}


def break_even(profile_s: float | None, extract_s: float | None, base_latency_ms: float | None,
               fragment_latency_ms: float | None) -> BreakEven | None:
    """N = (profile + extract time) / (base latency - fragment latency): the number of images after which
    the time spent making the fragment is paid back. "never" when the fragment is not faster.
    None when an input is missing (not measured)."""
    if None in (profile_s, extract_s, base_latency_ms, fragment_latency_ms):
        return None
    inputs = {"profile_s": profile_s, "extract_s": extract_s, "base_latency_ms": base_latency_ms,
              "fragment_latency_ms": fragment_latency_ms}
    saving_s = (base_latency_ms - fragment_latency_ms) / 1000.0
    if saving_s <= 0:
        return BreakEven(None, "the fragment is not faster than the base model", inputs)
    n = (profile_s + extract_s) / saving_s
    return BreakEven(n if math.isfinite(n) else None, f"{saving_s * 1000:.2f} ms saved per image", inputs)


def measure_profiling_overhead(pipe, prompt: str, seed: int, settings: GenerationSettings, repeats: int = 2) -> dict:
    """(profiled generation time - plain generation time) / plain generation time, on the same prompt, seed,
    steps and guidance; plain and profiled runs alternate. Plain runs stop at latents like the profiler."""
    import torch

    from core.profiling import profile_model

    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    device = pipe_device(pipe)
    plain, profiled = [], []

    def plain_run():
        _sync(device)
        start = time.perf_counter()
        pipe(prompt, num_inference_steps=settings.steps, guidance_scale=settings.guidance,
             generator=torch.Generator("cpu").manual_seed(seed), output_type="latent")
        _sync(device)
        return time.perf_counter() - start

    plain_run()  # warm-up
    for _ in range(max(1, repeats)):
        plain.append(plain_run())
        profile = profile_model(pipe, [prompt], [seed], steps=settings.steps, guidance=settings.guidance)
        profiled.extend(profile.meta["timings"]["per_generation_s"])
    base, prof = statistics.median(plain), statistics.median(profiled)
    return {"overhead": (prof - base) / base, "plain_s": base, "profiled_s": prof,
            "plain_samples_s": plain, "profiled_samples_s": profiled}
