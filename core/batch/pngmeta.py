"""The A1111 `parameters` PNG text chunk, so images open with their settings in other tools.

Uses the lead's `core.generation` helpers when they exist; this fallback writes the same convention:
"prompt\\n[Negative prompt: ...\\n]Steps: N, Sampler: X, CFG scale: G, Seed: S, Size: WxH, Model hash: H, Model: NAME".
"""

from __future__ import annotations

from pathlib import Path

from core.io import write_with_atomic

SAMPLER_NAMES = {
    "DDIMScheduler": "DDIM",
    "PNDMScheduler": "PLMS",
    "DDPMScheduler": "DDPM",
    "EulerDiscreteScheduler": "Euler",
    "EulerAncestralDiscreteScheduler": "Euler a",
    "DPMSolverMultistepScheduler": "DPM++ 2M",
    "LMSDiscreteScheduler": "LMS",
    "HeunDiscreteScheduler": "Heun",
    "UniPCMultistepScheduler": "UniPC",
}


def sampler_name(scheduler) -> str:
    name = type(scheduler).__name__
    return SAMPLER_NAMES.get(name, name)


def parameters_text(
    prompt: str,
    *,
    steps: int,
    sampler: str,
    cfg_scale: float,
    seed: int,
    width: int,
    height: int,
    model_hash: str,
    model_name: str,
    negative_prompt: str = "",
    extra: "dict | None" = None,
) -> str:
    lines = [prompt]
    if negative_prompt:
        lines.append(f"Negative prompt: {negative_prompt}")
    fields = [
        f"Steps: {steps}",
        f"Sampler: {sampler}",
        f"CFG scale: {cfg_scale:g}",
        f"Seed: {seed}",
        f"Size: {width}x{height}",
        f"Model hash: {model_hash[:10]}",
        f"Model: {model_name}",
    ]
    fields += [f"{key}: {value}" for key, value in (extra or {}).items()]
    lines.append(", ".join(fields))
    return "\n".join(lines)


def save_png_with_parameters(path, image, parameters: str) -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", parameters)
    write_with_atomic(Path(path), lambda tmp: image.save(tmp, format="PNG", pnginfo=info))


def read_parameters(path) -> "str | None":
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.info.get("parameters")
    except (OSError, ValueError):
        return None
