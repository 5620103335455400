"""Named presets the GUI and CLI offer. `default` is what a user gets without touching the slider."""

from __future__ import annotations

from core.pruning.extract import ExtractConfig
from core.pruning.heal import HealConfig
from core.pruning.selection import PruneConfig

# Chosen on builtin:shapes, the one model here whose images can be checked (bench_pruning score_choice, 64
# prompts apart from builtin_preset's, 24 of 80 heads removed): taylor/module lost 9.4 checker points, energy/global
# 46.9, energy/module 21.9, ablation/global 17.2. No score alone keeps a small dense model within 2 points, so the
# presets heal: 300 steps of distillation towards the base on the profiled prompts (core.pruning.heal), which
# brought taylor/module at 30 % of heads removed from -9.4 to -1.6 points on those 64 prompts.
# Healing trains the fragment in float32 with AdamW (about 16 bytes per UNet parameter: SD 1.5 ~14 GB, SDXL ~41 GB):
# on a smaller GPU extract with healing off (`--heal-steps 0`).
DEFAULT_HEAL = HealConfig(steps=300, lr=1e-4, batch=16, images_per_prompt=4, sampling_steps=20)

PRESETS = {
    # Heads only: the best 70 % by Taylor importance across the whole UNet (30 % of heads removed), then healed.
    # Global, not per-module, since the grounded retrain (session 4): on scenes 500-595 both lost 1.0 checker point
    # and global kept SSIM 0.929 vs 0.899; on the reported scenes 0-95 global 0.0 points, module -3.1.
    "default": dict(prune=PruneConfig("retention", 0.7), score="taylor", normalize="global",
                    reduce=ExtractConfig(), heal=DEFAULT_HEAL),
    "balanced": dict(prune=PruneConfig("retention", 0.6), score="taylor", normalize="module",
                     reduce=ExtractConfig(ffn_ratio=0.25, precision="fp16"), heal=DEFAULT_HEAL),
    # The most aggressive offered mode: half the heads, half the FFN neurons, int8 weight-only linears.
    "aggressive": dict(prune=PruneConfig("retention", 0.5), score="taylor", normalize="module",
                       reduce=ExtractConfig(ffn_ratio=0.5, precision="int8"), heal=DEFAULT_HEAL),
}


def preset_request(name: str):
    from core.fragments.extract import FragmentRequest

    if name not in PRESETS:
        raise KeyError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    return FragmentRequest(**PRESETS[name])


def preset_names() -> list[str]:
    return list(PRESETS)
