"""For a new prompt: find a cached fragment, check it still holds up, and say hit or miss and why."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from core.cache import CacheError, FragmentCache
from core.errors import CancelledError, HeadRoomError
from core.reuse.lookup import DEFAULT_THRESHOLD, LookupResult, find_fragment, record
from core.reuse.validate import ValidationResult, ValidationSettings, quick_validate

log = logging.getLogger(__name__)


@dataclass
class ReuseConfig:
    threshold: float = DEFAULT_THRESHOLD
    validate: bool = True
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    reduction_fp: str | None = None


@dataclass
class ReuseDecision:
    hit: bool
    reason: str
    lookup: LookupResult
    validation: ValidationResult | None = None

    def as_dict(self) -> dict:
        return {"hit": self.hit, "reason": self.reason, "lookup": self.lookup.as_dict(),
                "validation": self.validation.as_dict() if self.validation else None}


def fragment_pipe(base, fragment_dir):
    """A second pipeline sharing the base's text encoder, VAE and tokenizer, with the fragment's UNet.

    The base pipeline is left as it was."""
    try:
        from core.fragments import apply_fragment
    except ImportError:
        raise HeadRoomError("This build cannot load fragments (core.fragments is missing).") from None
    pipe = base.pipe
    components = dict(pipe.components)  # apply_fragment builds a new UNet: the base's is not touched
    clone = type(pipe)(**components)
    clone.set_progress_bar_config(disable=True)
    apply_fragment(clone, fragment_dir, base.model_hash)
    return clone


FragmentLoader = Callable[[object, object], object]  # (base LoadedModel, fragment dir) -> pipeline


def reuse_fragment(
    cache: FragmentCache,
    base,
    prompt: str,
    embedder,
    config: ReuseConfig | None = None,
    loader: FragmentLoader = fragment_pipe,
    scorer=None,
    progress=None,
    token=None,
) -> ReuseDecision:
    """Looks up, then (unless `config.validate` is off) validates the candidate on a few seeds. A hit means
    the fragment may be used for `prompt`; every decision is logged in the cache with its reason."""
    config = config or ReuseConfig()
    found = find_fragment(cache, embedder, prompt, base.model_hash, config.threshold, config.reduction_fp,
                          log_lookup=False)
    if not found.hit:
        record(cache, found)
        return ReuseDecision(False, found.reason, found)
    if not config.validate:
        record(cache, found)
        return ReuseDecision(True, found.reason + "; not validated", found)
    try:
        with cache.lease(found.entry.id) as entry:
            candidate = loader(base, entry.path)
            validation = quick_validate(base.pipe, candidate, prompt, config.validation, scorer,
                                        progress=progress, token=token)
    except CancelledError:
        raise
    except (CacheError, HeadRoomError) as exc:
        found.hit = False
        reason = f"miss: fragment {found.entry.name!r} could not be used: {exc}"
        record(cache, found, reason)
        return ReuseDecision(False, reason, found)
    if validation.passed:
        reason = f"{found.reason}; validation {validation.reason}"
    else:
        reason = f"miss: fragment {found.entry.name!r} was close ({found.similarity:.3f}) but validation {validation.reason}"
    found.hit = validation.passed
    record(cache, found, reason)
    return ReuseDecision(validation.passed, reason, found, validation)
