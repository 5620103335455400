"""The H3 harness: does a fragment profiled for one prompt hold up on paraphrases of it?

For every paraphrase set: the set's fragment (given, already cached, or profiled and extracted now and put in
the cache), then for every paraphrase (1) the cache lookup (hit, and routed to the set's own fragment?) and
(2) quick validation of the set's fragment on the paraphrase against the base. The paraphrase pass rate is
the share of paraphrases whose validation passed.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.cache import CacheKey, FragmentCache
from core.progress import as_sink
from core.reuse.decide import fragment_pipe
from core.reuse.embed import make_embedder
from core.reuse.lookup import DEFAULT_THRESHOLD, find_fragment
from core.reuse.paraphrases import ParaphraseSet
from core.reuse.validate import ValidationSettings, images_for, judge

log = logging.getLogger(__name__)
REPORT_SCHEMA = 1


@dataclass
class HarnessConfig:
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    threshold: float = DEFAULT_THRESHOLD
    prune_percentile: float = 30.0  # heads below this percentile of scores are removed
    profile_seeds: Sequence[int] = (0, 1)
    profile_steps: int = 10
    fragment: str | None = None  # one fragment for every set that names none
    similarity: str = "text-encoder"  # or "clip": the scorer's text tower (core.reuse.embed.make_embedder)


def _request(config: HarnessConfig):
    from core.fragments import FragmentRequest
    from core.pruning.selection import PruneConfig

    return FragmentRequest(prune=PruneConfig("percentile", float(config.prune_percentile)))


def fragment_for_set(cache: FragmentCache, base, pset: ParaphraseSet, config: HarnessConfig, token=None):
    """(cache entry, how it was obtained) for the set: its own folder, the shared one, the cached one, or new."""
    from core.cache.fragments import cache_fragment

    given = pset.fragment or config.fragment
    if given:
        return cache_fragment(cache, given), "given"
    request = _request(config)
    reduction = {"request": request, "profile_seeds": list(config.profile_seeds), "profile_steps": config.profile_steps}
    key = CacheKey.make(base.model_hash, reduction, [pset.prompt])
    entry = cache.get(key)
    if entry is not None:
        return entry, "cached"
    from core.fragments import extract_fragment
    from core.profiling import profile_model

    profile = profile_model(base, [pset.prompt], seeds=list(config.profile_seeds), steps=config.profile_steps,
                            guidance=config.validation.guidance, token=token)
    with tempfile.TemporaryDirectory(prefix="headroom-reuse-") as tmp:
        out = Path(tmp) / ("fragment-" + key.entry_id[:12])
        extract_fragment(base, profile, out, request, token=token)
        entry = cache.put(key, out, [pset.prompt], reduction=reduction, name=out.name)
    return entry, "extracted"


def run_reuse_eval(base, sets: list[ParaphraseSet], cache: FragmentCache, config: HarnessConfig | None = None,
                   scorer=None, clip_status: str = "", progress=None, token=None) -> dict:
    config = config or HarnessConfig()
    sink = as_sink(progress, token)
    embedder = make_embedder(base, config.similarity, scorer)
    start = time.perf_counter()
    total = sum(1 + len(s.paraphrases) for s in sets)
    done = 0
    entries = []
    for pset in sets:  # every set's fragment first, so that lookups see all of them
        sink.report(done, total, f"fragment for {pset.prompt!r}")
        entries.append(fragment_for_set(cache, base, pset, config, token=sink.token))
    results = []
    hits_before, lookups_before = cache.hit_rate()
    for pset, (entry, origin) in zip(sets, entries):
        with cache.lease(entry.id) as leased:
            candidate = fragment_pipe(base, leased.path)
            set_result = {"prompt": pset.prompt, "fragment": entry.name, "fragment_origin": origin,
                          "entry_id": entry.id, "paraphrases": []}
            for text in [pset.prompt] + list(pset.paraphrases):
                sink.report(done, total, f"validating {text!r}")
                lookup = find_fragment(cache, embedder, text, base.model_hash, config.threshold)
                base_images = images_for(base.pipe, text, config.validation, token=sink.token)
                frag_images = images_for(candidate, text, config.validation, token=sink.token)
                verdict = judge(text, base_images, frag_images, config.validation.tolerance, scorer)
                row = {"text": text, "passed": verdict.passed, "reason": verdict.reason,
                       "ssim_mean": verdict.ssim_mean, "clip_delta_rel": verdict.clip_delta_rel,
                       "lookup_hit": lookup.hit, "routed_to_own_fragment": bool(lookup.entry and lookup.entry.id == entry.id),
                       "similarity_to_own": float(embedder([text])[0] @ embedder([pset.prompt])[0]),
                       "lookup_similarity": lookup.similarity}
                if text == pset.prompt:
                    set_result["original"] = row
                else:
                    set_result["paraphrases"].append(row)
                done += 1
            results.append(set_result)
            del candidate
    rows = [r for s in results for r in s["paraphrases"]]
    passed = sum(r["passed"] for r in rows)
    hits_after, lookups_after = cache.hit_rate()
    report = {
        "schema_version": REPORT_SCHEMA,
        "model": {"name": getattr(base, "name", ""), "hash": base.model_hash,
                  "trained": bool(getattr(base, "details", {}).get("trained", False))},
        "paraphrases_tested": len(rows),
        "paraphrase_pass_rate": passed / len(rows) if rows else None,
        "originals_pass_rate": (sum(s["original"]["passed"] for s in results) / len(results)) if results else None,
        "lookup_hit_rate": sum(r["lookup_hit"] for r in rows) / len(rows) if rows else None,
        "lookup_routed_rate": sum(r["routed_to_own_fragment"] and r["lookup_hit"] for r in rows) / len(rows) if rows else None,
        "cache_hit_rate_logged": {"hits": hits_after - hits_before, "lookups": lookups_after - lookups_before},
        "similarity_metric": ("cosine of the CLIP scorer's text embeddings" if config.similarity == "clip" else
                              f"cosine of {embedder.pooling}-pooled text-encoder embeddings"
                              + (", centred on the empty prompt" if embedder.centre else "")),
        "tolerance": asdict(config.validation.tolerance),
        "clip": {"available": scorer is not None, "reason": clip_status},
        "validation": {"seeds": [int(s) for s in config.validation.seeds], "steps": config.validation.steps,
                       "guidance": config.validation.guidance},
        "threshold": config.threshold,
        "prune_percentile": config.prune_percentile,
        "elapsed_s": round(time.perf_counter() - start, 2),
        "sets": results,
    }
    sink.report(total, total, f"paraphrase pass rate {passed}/{len(rows)}")
    return report
