"""Finds the cached fragment whose profiled prompts are closest to a new prompt (cosine similarity of the base
model's own text-encoder embeddings). Every lookup is logged in the cache, for the hit rate."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from core.cache import CacheEntry, FragmentCache

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.9


@dataclass
class LookupResult:
    hit: bool
    prompt: str
    reason: str
    entry: CacheEntry | None = None
    similarity: float | None = None
    matched_prompt: str | None = None
    candidates: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "hit": self.hit, "prompt": self.prompt, "reason": self.reason,
            "entry_id": self.entry.id if self.entry else None, "entry_name": self.entry.name if self.entry else None,
            "similarity": self.similarity, "matched_prompt": self.matched_prompt, "candidates": self.candidates,
        }


def index_entries(cache: FragmentCache, embedder, base_model_hash: str) -> int:
    """Computes and stores the embeddings of entries that have none for this encoder yet; returns how many."""
    missing = cache.entries_missing_embeddings(base_model_hash, embedder.encoder_id)
    for entry in missing:
        cache.set_embeddings(entry.id, embedder.encoder_id, embedder(entry.prompts))
    return len(missing)


def nearest(query, ids, owners, matrix, allowed: set | None = None):
    """(entry index, row index, similarity) of the closest row, or None. `query` is a unit vector."""
    import numpy as np

    if matrix.shape[0] == 0:
        return None
    sims = matrix @ np.asarray(query, dtype=np.float32)
    if allowed is not None:
        keep = np.fromiter((ids[o] in allowed for o in owners), dtype=bool, count=len(owners))
        if not keep.any():
            return None
        sims = np.where(keep, sims, -np.inf)
    row = int(np.argmax(sims))
    return int(owners[row]), row, float(sims[row])


def find_fragment(
    cache: FragmentCache,
    embedder,
    prompt: str,
    base_model_hash: str,
    threshold: float = DEFAULT_THRESHOLD,
    reduction_fp: str | None = None,
    log_lookup: bool = True,
) -> LookupResult:
    """The closest cached fragment for `prompt` among this base model's entries (optionally only those made
    with one reduction setting), a hit when its similarity reaches `threshold`."""
    start = time.perf_counter()
    cache.memo(f"indexed|{base_model_hash}|{embedder.encoder_id}",
               lambda: index_entries(cache, embedder, base_model_hash))
    ids, owners, matrix = cache.embeddings(base_model_hash, embedder.encoder_id)
    allowed = None
    if reduction_fp is not None:
        allowed = {e.id for e in cache.entries(base_model_hash) if e.key.reduction_fp == reduction_fp}
    found = nearest(embedder([prompt])[0], ids, owners, matrix, allowed) if ids else None
    if found is None:
        what = "for this base model" if reduction_fp is None else "for this base model and reduction setting"
        result = LookupResult(False, prompt, f"miss: no cached fragment {what}", candidates=len(ids))
    else:
        owner, row, similarity = found
        entry = cache.entry(ids[owner])
        first_row = int((owners == owner).argmax())
        matched = entry.prompts[row - first_row] if entry and row - first_row < len(entry.prompts) else None
        if similarity >= threshold:
            reason = (f"hit: {similarity:.3f} similar to profiled prompt {matched!r} of fragment {entry.name!r} "
                      f"(threshold {threshold:.2f})")
        else:
            reason = (f"miss: closest is fragment {entry.name!r}, {similarity:.3f} similar to {matched!r}, "
                      f"below the threshold {threshold:.2f}")
        result = LookupResult(similarity >= threshold, prompt, reason, entry, similarity, matched, len(ids))
    result.seconds = time.perf_counter() - start
    if log_lookup:
        record(cache, result)
    return result


def record(cache: FragmentCache, result: LookupResult, reason: str | None = None) -> None:
    hit = result.hit
    cache.log_lookup(result.prompt, hit, result.entry.id if result.entry else None, result.similarity,
                     reason or result.reason)
    hits, total = cache.hit_rate()
    log.info("Fragment reuse %s for %r (%s); hit rate %d/%d = %.0f%%", "hit" if hit else "miss", result.prompt,
             reason or result.reason, hits, total, 100.0 * hits / total if total else 0.0)
