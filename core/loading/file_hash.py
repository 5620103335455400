"""SHA-256 of users' weight files, remembered by path, size and modification time.

A model's hash ties profiles and fragments to the exact base weights, so every load needs it; reading a 7 GB
SDXL checkpoint again on every load costs tens of seconds. A file whose size or modification time changed is
hashed again. The remembered hashes live in one small JSON file ($HEADROOM_HASH_CACHE, else the user cache
folder); "off" turns the memory off. A damaged memory file is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

ENV_HASH_CACHE = "HEADROOM_HASH_CACHE"
MAX_ENTRIES = 256
CHUNK = 16 * 1024 * 1024


def file_sha256(path, chunk: int = CHUNK) -> str:
    """SHA-256 of a file, read in chunks (never the whole file in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def hash_cache_file() -> Path | None:
    override = os.environ.get(ENV_HASH_CACHE)
    if override:
        return None if override.strip().lower() == "off" else Path(override).expanduser()
    import platformdirs

    from core.cache.location import APP_NAME

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / "file_hashes.json"


def cached_file_sha256(path) -> str:
    """`file_sha256(path)`, computed once per (path, size, mtime) and then read from the hash memory."""
    path = Path(path).resolve()
    stat = path.stat()
    key = str(path)
    stamp = [stat.st_size, stat.st_mtime_ns]
    memory_file = hash_cache_file()
    entries = _read(memory_file) if memory_file else {}
    entry = entries.get(key)
    if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    sha = file_sha256(path)
    if memory_file is not None:
        entries.pop(key, None)
        entries[key] = {"stamp": stamp, "sha256": sha}
        _write(memory_file, dict(list(entries.items())[-MAX_ENTRIES:]))
    return sha


def _read(memory_file: Path) -> dict:
    try:
        data = json.loads(memory_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(memory_file: Path, entries: dict) -> None:
    from core.io import write_json_atomic

    try:
        memory_file.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(memory_file, entries)
    except OSError:
        pass  # a read-only or full disk only costs the next load a re-hash
