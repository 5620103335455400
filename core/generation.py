"""Image generation with progress, cancel, and the `parameters` PNG text chunk other SD tools read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from core.errors import HeadRoomError
from core.progress import as_sink


@dataclass
class GenerationParams:
    prompt: str
    seed: int
    steps: int
    guidance: float
    width: int
    height: int
    sampler: str = ""
    model_name: str = ""
    model_hash: str = ""
    negative_prompt: str = ""
    fragment: str = ""
    extra: dict = field(default_factory=dict)

    def to_png_text(self) -> str:
        """The A1111 convention: prompt, optional negative prompt, then one line of `Key: value` pairs."""
        lines = [self.prompt]
        if self.negative_prompt:
            lines.append(f"Negative prompt: {self.negative_prompt}")
        pairs = [
            ("Steps", self.steps), ("Sampler", self.sampler), ("CFG scale", f"{self.guidance:g}"), ("Seed", self.seed),
            ("Size", f"{self.width}x{self.height}"), ("Model hash", self.model_hash[:10]), ("Model", self.model_name),
        ]
        if self.fragment:
            pairs.append(("HeadRoom fragment", self.fragment))
        pairs += list(self.extra.items())
        lines.append(", ".join(f"{k}: {v}" for k, v in pairs if v != ""))
        return "\n".join(lines)


def parse_size(text: Optional[str], default: tuple[int, int]) -> tuple[int, int]:
    if not text:
        return default
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise HeadRoomError(f"Size {text!r} is not WIDTHxHEIGHT (for example 64x64 or 512x512).") from None
    if width % 8 or height % 8 or width <= 0 or height <= 0:
        raise HeadRoomError(f"Size {text!r}: width and height must be positive multiples of 8.")
    return width, height


def default_size(pipe) -> tuple[int, int]:
    side = pipe.unet.config.sample_size * pipe.vae_scale_factor
    return side, side


def generate_images(
    pipe,
    prompts: Sequence[str],
    seeds: Sequence[int],
    steps: int = 20,
    guidance: float = 7.5,
    size: Optional[tuple[int, int]] = None,
    negative_prompt: str = "",
    progress=None,
    token=None,
    batch_size: int = 1,
    model_name: str = "",
    model_hash: str = "",
    output_type: str = "pil",
):
    """Generates one image per (prompt, seed) pair, prompts × seeds in that order.

    Returns a list of (image, GenerationParams). Progress is reported per denoising step; cancelling stops
    within one step (raises CancelledError).
    """
    import torch

    sink = as_sink(progress, token)
    width, height = size or default_size(pipe)
    jobs = [(p, s) for p in prompts for s in seeds]
    total_steps = len(jobs) * steps
    results = []
    sampler = type(pipe.scheduler).__name__.replace("Scheduler", "")
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        done_before = start * steps

        def on_step_end(_pipe, step_index, _timestep, callback_kwargs, _done=done_before, _n=len(chunk)):
            sink.report(_done + (step_index + 1) * _n, total_steps, f"image {start + 1}/{len(jobs)}, step {step_index + 1}/{steps}")
            return callback_kwargs

        sink.check()
        generators = [torch.Generator(device="cpu").manual_seed(int(s)) for _, s in chunk]
        with torch.inference_mode():
            out = pipe(
                prompt=[p for p, _ in chunk],
                negative_prompt=[negative_prompt] * len(chunk) if negative_prompt else None,
                num_inference_steps=steps,
                guidance_scale=guidance,
                height=height,
                width=width,
                generator=generators,
                callback_on_step_end=on_step_end,
                output_type=output_type,
            )
        for (prompt, seed), image in zip(chunk, out.images):
            params = GenerationParams(prompt, int(seed), steps, guidance, width, height, sampler, model_name, model_hash,
                                      negative_prompt)
            results.append((image, params))
    return results


def save_png_with_parameters(path, image, params: GenerationParams) -> Path:
    """Writes the PNG atomically with a `parameters` text chunk (and the full params as JSON in `headroom`)."""
    import json

    from PIL.PngImagePlugin import PngInfo

    from core.io import write_with_atomic

    info = PngInfo()
    info.add_text("parameters", params.to_png_text())
    info.add_text("headroom", json.dumps(asdict(params)))
    path = Path(path)
    write_with_atomic(path, lambda tmp: image.save(tmp, format="PNG", pnginfo=info))
    return path
