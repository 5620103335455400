"""Fragment cache: fragment folders stored as opaque artifacts with SQLite metadata (WAL, migrations),
keyed by base-model hash + reduction settings + prompt-set fingerprint, LRU-evicted within a byte budget,
never evicting a leased entry, repaired after crashes, sha256-verified on load.

Importing this package does no work.
"""

from core.cache.errors import CacheEntryInUseError, CacheError, CacheFullError, CacheIntegrityError
from core.cache.keys import CacheKey, normalise_prompt, prompt_set_fingerprint, reduction_fingerprint
from core.cache.location import ENV_CACHE_DIR, default_cache_dir
from core.cache.store import CacheEntry, FragmentCache, RecoveryReport

__all__ = [
    "ENV_CACHE_DIR",
    "CacheEntry",
    "CacheEntryInUseError",
    "CacheError",
    "CacheFullError",
    "CacheIntegrityError",
    "CacheKey",
    "FragmentCache",
    "RecoveryReport",
    "default_cache_dir",
    "normalise_prompt",
    "prompt_set_fingerprint",
    "reduction_fingerprint",
]
