"""Reuse of cached fragments for new prompts: text-encoder similarity lookup, quick validation, hit/miss with
a reason, and the paraphrase harness (`headroom reuse-eval`). Importing this package does no work."""

from core.reuse.decide import ReuseConfig, ReuseDecision, fragment_pipe, reuse_fragment
from core.reuse.embed import ClipTextEmbedder, PromptEmbedder, make_embedder
from core.reuse.lookup import DEFAULT_THRESHOLD, LookupResult, find_fragment, index_entries
from core.reuse.validate import ReuseTolerance, ValidationResult, ValidationSettings, quick_validate

__all__ = [
    "DEFAULT_THRESHOLD",
    "ClipTextEmbedder",
    "LookupResult",
    "PromptEmbedder",
    "ReuseConfig",
    "ReuseDecision",
    "ReuseTolerance",
    "ValidationResult",
    "ValidationSettings",
    "find_fragment",
    "fragment_pipe",
    "index_entries",
    "make_embedder",
    "quick_validate",
    "reuse_fragment",
]
