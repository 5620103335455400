"""Runs a queue of (prompt, seed) jobs through a pipeline in batches, saving each image as it is finished.

Each image gets its own seeded generator, so an image does not depend on which batch it landed in. Every
finished batch is on disk (with the summary) before the next starts: cancelling or crashing keeps it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.batch.jobs import BatchJob
from core.batch.pngmeta import read_parameters
from core.batch.sizing import BatchSizer, is_out_of_memory
from core.errors import CancelledError, HeadRoomError
from core.io import write_json_atomic
from core.progress import as_sink

log = logging.getLogger(__name__)

SUMMARY_NAME = "summary.json"
SUMMARY_SCHEMA = 1


@dataclass
class BatchSettings:
    steps: int = 20
    guidance: float = 7.5
    batch_size: int | str = "auto"
    max_auto_batch: int = 8
    width: int | None = None
    height: int | None = None
    skip_existing: bool = True  # an image already on disk with the same parameters is not made again
    model_name: str = ""
    model_hash: str = ""
    fragment: str | None = None  # shown in the parameters chunk and the summary


@dataclass
class ImageRecord:
    index: int
    file: str
    prompt: str
    seed: int
    batch_size: int
    seconds: float  # share of its batch's wall time
    skipped: bool = False


@dataclass
class BatchSummary:
    status: str  # "running", "finished", "cancelled", "failed"
    total: int
    images: list = field(default_factory=list)
    elapsed_s: float = 0.0
    error: str | None = None
    sizing: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    out_dir: str = ""

    @property
    def done(self) -> int:
        return len(self.images)

    @property
    def generated(self) -> int:
        return sum(1 for r in self.images if not r.skipped)

    def images_per_minute(self) -> float:
        seconds = sum(r.seconds for r in self.images if not r.skipped)
        return 60.0 * self.generated / seconds if seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {
            "schema_version": SUMMARY_SCHEMA,
            "status": self.status,
            "images_done": self.done,
            "images_generated": self.generated,
            "images_total": self.total,
            "elapsed_s": round(self.elapsed_s, 3),
            "images_per_minute": round(self.images_per_minute(), 3),
            "error": self.error,
            "batch_size": self.sizing,
            "settings": self.settings,
            "images": [asdict(r) for r in self.images],
        }


def _resolve_size(pipe, settings: BatchSettings) -> tuple[int, int]:
    scale = getattr(pipe, "vae_scale_factor", 8)
    default = int(pipe.unet.config.sample_size) * int(scale)
    return int(settings.width or default), int(settings.height or default)


def _free_memory_bytes(device) -> int | None:
    import torch

    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # pragma: no cover
        return None


def _release_memory(device) -> None:
    import gc

    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def generate_batch(pipe, jobs: list[BatchJob], settings: BatchSettings, width: int, height: int, check=None):
    """One pipeline call for `jobs`; `check()` runs after every denoising step (a cancel point)."""
    import torch

    device = pipe.unet.device
    gen_device = "cpu" if device.type == "mps" else device
    generators = [torch.Generator(device=gen_device).manual_seed(job.seed) for job in jobs]
    negatives = [job.negative_prompt for job in jobs]

    def on_step_end(_pipe, _step, _timestep, callback_kwargs):
        if check is not None:
            check()
        return callback_kwargs

    out = pipe(
        prompt=[job.prompt for job in jobs],
        negative_prompt=negatives if any(negatives) else None,
        num_inference_steps=settings.steps,
        guidance_scale=settings.guidance,
        height=height,
        width=width,
        generator=generators,
        output_type="pil",
        callback_on_step_end=on_step_end,
    )
    return list(out.images)


def _format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA --"
    seconds = int(round(seconds))
    return f"ETA {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def run_batch(
    model: Any,
    jobs: list[BatchJob],
    out_dir,
    settings: BatchSettings | None = None,
    progress=None,
    token=None,
    generate=generate_batch,
) -> BatchSummary:
    """Generates every job into `out_dir` and writes `summary.json` there after each batch.

    `model` is a LoadedModel or a diffusers pipeline. On cancel the finished images and the summary stay and
    CancelledError is raised (its `.summary` holds the summary). Progress payloads are dicts with
    `file`, `index`, `batch_size`, `eta_s`.
    """
    settings = settings or BatchSettings()
    pipe = getattr(model, "pipe", model)
    if not settings.model_name:
        settings.model_name = getattr(model, "name", "") or type(pipe).__name__
    if not settings.model_hash:
        settings.model_hash = getattr(model, "model_hash", "") or "unknown"
    if settings.steps < 1:
        raise HeadRoomError(f"Steps must be at least 1, not {settings.steps}.")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HeadRoomError(f"Cannot create the output folder {out_dir}: {exc.strerror}.") from exc
    sink = as_sink(progress, token)
    width, height = _resolve_size(pipe, settings)
    sampler = type(pipe.scheduler).__name__.replace("Scheduler", "")  # as core.generation names it
    device = pipe.unet.device
    sizer = BatchSizer(settings.batch_size, max_auto=settings.max_auto_batch)
    summary = BatchSummary("running", len(jobs), out_dir=str(out_dir))
    summary.settings = {
        k: v for k, v in asdict(settings).items() if k not in ("batch_size", "max_auto_batch", "skip_existing")
    }
    summary.settings.update(width=width, height=height, sampler=sampler)

    from core.generation import GenerationParams, save_png_with_parameters

    def generation_params(job: BatchJob) -> GenerationParams:
        return GenerationParams(
            job.prompt, job.seed, settings.steps, settings.guidance, width, height, sampler,
            settings.model_name, settings.model_hash, job.negative_prompt, settings.fragment or "",
        )

    def params_for(job: BatchJob) -> str:
        return generation_params(job).to_png_text()

    queue: deque[BatchJob] = deque()
    for job in jobs:
        target = out_dir / job.filename
        if settings.skip_existing and target.is_file() and read_parameters(target) == params_for(job):
            summary.images.append(ImageRecord(job.index, job.filename, job.prompt, job.seed, 0, 0.0, skipped=True))
        else:
            queue.append(job)

    start = time.perf_counter()
    generated_seconds = 0.0

    def write_summary() -> None:
        summary.elapsed_s = time.perf_counter() - start
        summary.sizing = sizer.as_dict()
        write_json_atomic(out_dir / SUMMARY_NAME, summary.as_dict())

    try:
        sink.report(summary.done, summary.total, f"{summary.done}/{summary.total} images, {_format_eta(None)}")
        while queue:
            sink.check()
            size = sizer.next_size(len(queue))
            batch = [queue.popleft() for _ in range(size)]
            memory_before = _peak_reset(device)
            t0 = time.perf_counter()
            try:
                images = generate(pipe, batch, settings, width, height, check=sink.check)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                queue.extendleft(reversed(batch))
                del exc
                _release_memory(device)
                sizer.record_out_of_memory(size)
                continue
            seconds = time.perf_counter() - t0
            sizer.record_success(size, seconds, _bytes_per_image(device, memory_before, size), _free_memory_bytes(device))
            for job, image in zip(batch, images):
                save_png_with_parameters(out_dir / job.filename, image, generation_params(job))
                summary.images.append(ImageRecord(job.index, job.filename, job.prompt, job.seed, size, seconds / size))
            generated_seconds += seconds
            write_summary()
            made = summary.generated
            left = summary.total - summary.done
            eta = generated_seconds / made * left if made else None
            sink.report(
                summary.done, summary.total, f"{summary.done}/{summary.total} images, {_format_eta(eta)}",
                {"file": str(out_dir / batch[-1].filename), "index": batch[-1].index, "batch_size": size, "eta_s": eta},
            )
    except CancelledError as exc:
        summary.status = "cancelled"
        write_summary()
        err = CancelledError(
            f"Cancelled after {summary.done} of {summary.total} images; the finished images and "
            f"{SUMMARY_NAME} are in {out_dir}. Run the same batch again to continue where it stopped."
        )
        err.summary = summary
        raise err from exc
    except BaseException as exc:
        summary.status = "failed"
        summary.error = str(exc) or type(exc).__name__
        write_summary()
        raise
    summary.status = "finished"
    write_summary()
    return summary


def _peak_reset(device) -> int | None:
    import torch

    if device.type != "cuda":
        return None
    torch.cuda.reset_peak_memory_stats(device)
    return int(torch.cuda.memory_allocated(device))


def _bytes_per_image(device, before: int | None, size: int) -> int | None:
    import torch

    if device.type != "cuda" or before is None:
        return None  # CPU: no reliable per-batch peak; out-of-memory backoff still applies
    return max(1, (int(torch.cuda.max_memory_allocated(device)) - before) // max(size, 1))
