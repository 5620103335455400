"""What a profiling run records. Defaults are what the GUI and the CLI use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_NUM_SEEDS = 8  # the roadmap's sampling plan: stability across seeds must be visible


@dataclass
class ProfilerConfig:
    cross_stats: bool = True  # token mass + entropy for cross-attention (explicit probabilities, 77 keys)
    ffn_stats: bool = True  # mean |GEGLU hidden activation| per FFN neuron
    max_step_buckets: int = 50  # more steps than this are grouped into this many equal buckets
    spatial_map_modules: Sequence[str] | None = None  # cross modules with per-token spatial maps (off)
    map_size: int = 16  # spatial maps are average-pooled to at most map_size x map_size
    decode_images: bool = False  # profiling needs latents only; decoding costs a VAE pass per image


def step_buckets(steps: int, max_buckets: int) -> list[int]:
    """The bucket index of each denoising step: one bucket per step up to max_buckets, then equal groups."""
    if steps <= 0:
        raise ValueError("steps must be positive")
    buckets = max(1, min(steps, max_buckets))
    return [step * buckets // steps for step in range(steps)]
