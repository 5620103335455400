"""Head scoring, selection, logical masks and physical surgery, plus FFN / low-rank / precision reductions.

Importing this package does no work: torch and diffusers are imported inside the functions that need them.
Submodules: `structure` (what can be pruned), `scores`, `selection` (incl. the fast `estimate`), `masks`
(logical, reversible), `surgery` (physical), `ffn`, `lowrank`, `precision`, `sizes`, `extract` (the pipeline).
"""

from __future__ import annotations

from core.lazy import lazy_exports

_EXPORTS = {
    "compute_head_scores": "core.pruning.scores",
    "HeadScores": "core.pruning.scores",
    "PruneConfig": "core.pruning.selection",
    "HeadSelection": "core.pruning.selection",
    "select_heads": "core.pruning.selection",
    "estimate": "core.pruning.selection",
    "estimate_reductions": "core.pruning.selection",
    "apply_low_rank": "core.pruning.lowrank",
    "apply_precision": "core.pruning.precision",
    "prune_ffn": "core.pruning.surgery",
    "select_ffn": "core.pruning.ffn",
    "ffn_scores": "core.pruning.ffn",
    "reduce_unet": "core.pruning.extract",
    "PRESETS": "core.pruning.presets",
    "UnetStructure": "core.pruning.structure",
    "apply_head_masks": "core.pruning.masks",
    "prune_heads": "core.pruning.surgery",
    "ExtractConfig": "core.pruning.extract",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(_EXPORTS)
