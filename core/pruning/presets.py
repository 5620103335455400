"""Named presets the GUI and CLI offer. `default` is what a user gets without touching the slider."""

from __future__ import annotations

from core.pruning.extract import ExtractConfig
from core.pruning.selection import PruneConfig

PRESETS = {
    # Heads only, 35th percentile of per-module-normalised activation energy: >= 30% of heads removed.
    "default": dict(prune=PruneConfig("percentile", 35.0), score="activation_energy_rank", normalize="module",
                    reduce=ExtractConfig()),
    "balanced": dict(prune=PruneConfig("percentile", 40.0), score="activation_energy_rank", normalize="module",
                     reduce=ExtractConfig(ffn_ratio=0.25, precision="fp16")),
    # The most aggressive offered mode: half the heads, half the FFN neurons, int8 weight-only linears.
    "aggressive": dict(prune=PruneConfig("retention", 0.5), score="activation_energy_rank", normalize="module",
                       reduce=ExtractConfig(ffn_ratio=0.5, precision="int8")),
}


def preset_request(name: str):
    from core.fragments.extract import FragmentRequest

    if name not in PRESETS:
        raise KeyError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    return FragmentRequest(**PRESETS[name])
