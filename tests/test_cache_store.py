"""Fragment cache: keys, location, SQLite schema and migrations, LRU within a budget, leases, integrity."""

from __future__ import annotations

import contextlib
import os
import sqlite3

import pytest

from core.cache import (
    CacheEntryInUseError,
    CacheError,
    CacheFullError,
    CacheIntegrityError,
    CacheKey,
    FragmentCache,
    default_cache_dir,
    prompt_set_fingerprint,
)
from core.cache.schema import SCHEMA_VERSION, connect, migrate


def make_fragment(folder, payload: bytes, name="fragment"):
    """A small fragment folder shaped like a real one: a manifest and a weights file in a subfolder."""
    root = folder / name
    (root / "unet").mkdir(parents=True)
    (root / "manifest.json").write_text('{"schema_version": 0, "name": "%s"}' % name)
    (root / "unet" / "weights.safetensors").write_bytes(payload)
    return root


def key(i, base="base-hash"):
    return CacheKey.make(base, {"heads_pruned": 0.5, "rank": None}, [f"prompt {i}"])


def test_keys_ignore_order_case_and_spacing_but_not_settings():
    assert prompt_set_fingerprint(["A red  circle", "blue square"]) == prompt_set_fingerprint(["blue square ", "a red circle"])
    a = CacheKey.make("h", {"threshold": 0.3, "method": "energy"}, ["x"])
    assert a == CacheKey.make("h", {"method": "energy", "threshold": 0.1 + 0.2}, ["X"])
    assert a != CacheKey.make("h", {"method": "energy", "threshold": 0.31}, ["x"])
    assert a != CacheKey.make("other", {"method": "energy", "threshold": 0.3}, ["x"])
    assert a.entry_id != CacheKey.make("h", {"method": "energy", "threshold": 0.3}, ["y"]).entry_id


def test_cache_location_argument_then_env_then_user_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HEADROOM_CACHE_DIR", str(tmp_path / "env"))
    assert default_cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert default_cache_dir() == tmp_path / "env"
    monkeypatch.delenv("HEADROOM_CACHE_DIR")
    assert "HeadRoom" in str(default_cache_dir())
    monkeypatch.setenv("HEADROOM_CACHE_DIR", str(tmp_path / "env"))
    FragmentCache().put(key(0), make_fragment(tmp_path, b"w"), ["p"])
    assert (tmp_path / "env" / "cache.sqlite3").is_file()


def test_put_copies_the_fragment_and_lease_returns_it_verified(tmp_path):
    src = make_fragment(tmp_path, os.urandom(4000))
    cache = FragmentCache(tmp_path / "c")
    entry = cache.put(key(1), src, ["prompt 1", "  "], reduction={"heads_pruned": 0.5}, meta={"clip_delta": 0.01})
    assert entry.path != src and entry.prompts == ["prompt 1"]
    assert (entry.path / "unet" / "weights.safetensors").read_bytes() == (src / "unet" / "weights.safetensors").read_bytes()
    assert entry.size_bytes == sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    got = cache.get(key(1))
    assert got.id == entry.id and got.meta == {"clip_delta": 0.01} and got.reduction == {"heads_pruned": 0.5}
    assert cache.get(key(2)) is None
    with cache.lease(entry.id) as leased:
        assert cache.leased(entry.id) and leased.use_count == 1
    assert not cache.leased(entry.id)
    # same key again replaces the entry (one entry per key)
    cache.put(key(1), make_fragment(tmp_path / "v2", b"new"), ["prompt 1"])
    assert len(cache.entries()) == 1
    assert (cache.get(key(1)).path / "unet" / "weights.safetensors").read_bytes() == b"new"


def test_database_is_wal_with_current_schema(tmp_path):
    cache = FragmentCache(tmp_path)
    with contextlib.closing(sqlite3.connect(tmp_path / "cache.sqlite3")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == cache.schema_version()


def test_old_schema_is_migrated_keeping_entries(tmp_path):
    src = make_fragment(tmp_path, b"old weights")
    cache_dir = tmp_path / "c"
    cache_dir.mkdir()
    with contextlib.closing(connect(cache_dir / "cache.sqlite3")) as conn:
        assert migrate(conn, target=1) == [1]
    # write through the current code path, then strip the tables version 2 added, as an old install had them
    FragmentCache(cache_dir).put(key(5), src, ["prompt 5"])
    with contextlib.closing(connect(cache_dir / "cache.sqlite3")) as conn:
        conn.execute("DROP TABLE embeddings")
        conn.execute("DROP TABLE lookups")
        conn.execute("PRAGMA user_version = 1")
    reopened = FragmentCache(cache_dir)
    assert reopened.report.migrations_applied == [2] and reopened.schema_version() == SCHEMA_VERSION
    assert reopened.get(key(5)).prompts == ["prompt 5"]
    reopened.log_lookup("prompt 5", True, key(5).entry_id, 1.0, "exact")  # the new table works
    assert reopened.hit_rate() == (1, 1)


def test_a_newer_schema_is_refused_clearly(tmp_path):
    FragmentCache(tmp_path)
    with contextlib.closing(connect(tmp_path / "cache.sqlite3")) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    with pytest.raises(CacheError, match="newer HeadRoom"):
        FragmentCache(tmp_path)


def test_lru_eviction_keeps_recent_and_leased_entries(tmp_path):
    cache = FragmentCache(tmp_path / "c", budget_bytes=3 * 1100)
    ids = [cache.put(key(i), make_fragment(tmp_path / str(i), b"x" * 1000), [f"prompt {i}"]).id for i in range(3)]
    cache.touch(ids[0])  # 0 used recently: 1 is now the least recently used
    cache.put(key(3), make_fragment(tmp_path / "3", b"x" * 1000), ["prompt 3"])
    assert {e.id for e in cache.entries()} == {ids[0], ids[2], key(3).entry_id}
    assert not (cache.entries_dir / ids[1]).exists()
    with cache.lease(ids[2]):  # 2 is the oldest now, but in use: 0 goes instead
        cache.put(key(4), make_fragment(tmp_path / "4", b"x" * 1000), ["prompt 4"])
        remaining = {e.id for e in cache.entries()}
        assert ids[2] in remaining and ids[0] not in remaining
        with pytest.raises(CacheEntryInUseError):
            cache.remove(ids[2])
    assert cache.total_bytes() <= cache.budget_bytes


def test_budget_errors_are_clear(tmp_path):
    cache = FragmentCache(tmp_path / "c", budget_bytes=1500)
    with pytest.raises(CacheFullError, match="more than the whole cache budget"):
        cache.put(key(0), make_fragment(tmp_path / "big", b"x" * 2000), ["p"])
    first = cache.put(key(1), make_fragment(tmp_path / "a", b"x" * 1000), ["p"])
    with cache.lease(first.id), pytest.raises(CacheFullError, match="in use"):
        cache.put(key(2), make_fragment(tmp_path / "b", b"x" * 1000), ["p"])
    assert [e.id for e in cache.entries()] == [first.id]
    assert not list(cache.tmp_dir.iterdir())  # the refused copy was cleaned up


def test_damaged_file_is_refused_with_a_clear_error(tmp_path):
    cache = FragmentCache(tmp_path / "c")
    entry = cache.put(key(1), make_fragment(tmp_path, b"a" * 500), ["p"])
    weights = entry.path / "unet" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[100] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CacheIntegrityError, match=r"damaged: unet/weights.safetensors has sha256"):
        with cache.lease(entry.id):
            pass
    assert not cache.leased(entry.id)  # a failed load does not leave a pin behind
    weights.unlink()
    with pytest.raises(CacheIntegrityError, match="is missing"):
        cache.verify_entry(cache.entry(entry.id))
