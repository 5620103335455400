"""Errors of the fragment cache, each saying what was found and what to do."""

from __future__ import annotations

from core.errors import HeadRoomError


class CacheError(HeadRoomError):
    pass


class CacheIntegrityError(CacheError):
    """A cached file's sha256 no longer matches what was stored."""


class CacheFullError(CacheError):
    pass


class CacheEntryInUseError(CacheError):
    pass
