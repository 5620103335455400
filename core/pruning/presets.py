"""Named presets the GUI and CLI offer. `default` is what a user gets without touching the slider."""

from __future__ import annotations

from core.pruning.extract import ExtractConfig
from core.pruning.selection import PruneConfig

# Globally normalised scores: at the same head budget they keep builtin:shapes' images much closer to the base
# than per-module normalisation (bench_pruning score_choice: SSIM 0.81 vs 0.68 for energy, 0.90 vs 0.70 for
# taylor, 36 % of heads removed). Energy is free (it comes with the profile), so presets use it.
PRESETS = {
    # Heads only, keep the best 65 % by globally normalised activation energy: 35 % of heads removed.
    "default": dict(prune=PruneConfig("retention", 0.65), score="activation_energy_rank", normalize="global",
                    reduce=ExtractConfig()),
    "balanced": dict(prune=PruneConfig("retention", 0.6), score="activation_energy_rank", normalize="global",
                     reduce=ExtractConfig(ffn_ratio=0.25, precision="fp16")),
    # The most aggressive offered mode: half the heads, half the FFN neurons, int8 weight-only linears.
    "aggressive": dict(prune=PruneConfig("retention", 0.5), score="activation_energy_rank", normalize="global",
                       reduce=ExtractConfig(ffn_ratio=0.5, precision="int8")),
}


def preset_request(name: str):
    from core.fragments.extract import FragmentRequest

    if name not in PRESETS:
        raise KeyError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    return FragmentRequest(**PRESETS[name])


def preset_names() -> list[str]:
    return list(PRESETS)
