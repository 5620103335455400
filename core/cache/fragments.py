"""Putting a saved fragment folder (core.fragments) into the cache, keyed from its own manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.cache.errors import CacheError
from core.cache.keys import CacheKey
from core.cache.store import CacheEntry, FragmentCache


def reduction_of_manifest(manifest) -> dict:
    """The settings that made the fragment (not the numbers that resulted from them)."""
    p = manifest.pruning
    params = {k: v for k, v in (p.threshold_params or {}).items() if k != "threshold_value"}
    c = manifest.compression
    quant = getattr(c, "quantization", None)
    return {
        "score": p.method,
        "normalize": p.normalize,
        "select": params,
        "ffn_ratio": p.ffn.ratio if p.ffn is not None else 0.0,
        "low_rank_layers": len(getattr(c, "low_rank_layers", []) or []),
        "precision": (quant.dtype if quant is not None and quant.applied else None),
    }


def cache_fragment(cache: FragmentCache, fragment_dir, reduction: Any | None = None,
                   prompts: list[str] | None = None) -> CacheEntry:
    """Copies a fragment folder into the cache under base hash + reduction + its profiled prompts."""
    from core.fragments import read_manifest

    fragment_dir = Path(fragment_dir)
    manifest = read_manifest(fragment_dir)
    prompts = list(prompts if prompts is not None else manifest.generation_context.profiling.prompts)
    if not prompts:
        raise CacheError(
            f"The fragment at {fragment_dir} records no profiled prompts, so it cannot be found for new prompts. "
            "Extract it from a profile that lists its prompts."
        )
    reduction = reduction if reduction is not None else reduction_of_manifest(manifest)
    key = CacheKey.make(manifest.base_model.hash, reduction, prompts)
    meta = {"base_model": manifest.base_model.name, "head_retention_ratio": manifest.pruning.head_retention_ratio,
            "quality_eval": manifest.quality_eval.model_dump(exclude_none=True)}
    return cache.put(key, fragment_dir, prompts, reduction=reduction, name=fragment_dir.name, meta=meta)
