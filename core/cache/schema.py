"""The cache's SQLite database: WAL mode, `PRAGMA user_version` as the schema version, ordered migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from core.cache.errors import CacheError

# Each migration takes the database from version i to i+1. Never edit a released one: append.
MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: entries, their profiled prompts, leases (pins) by live processes
    """
    CREATE TABLE entries (
        id TEXT PRIMARY KEY,
        base_model_hash TEXT NOT NULL,
        reduction_fp TEXT NOT NULL,
        reduction_json TEXT NOT NULL,
        prompt_fp TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        size_bytes INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        files_json TEXT NOT NULL,
        meta_json TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        last_used_at REAL NOT NULL,
        use_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX entries_key ON entries (base_model_hash, reduction_fp, prompt_fp);
    CREATE INDEX entries_lru ON entries (last_used_at);
    CREATE TABLE prompts (
        entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        text TEXT NOT NULL,
        PRIMARY KEY (entry_id, idx)
    );
    CREATE TABLE leases (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
        pid INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX leases_entry ON leases (entry_id);
    CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 1 -> 2: text-encoder embeddings of each entry's prompts (for reuse) and a log of lookups (hit rate)
    """
    CREATE TABLE embeddings (
        entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
        encoder_id TEXT NOT NULL,
        dim INTEGER NOT NULL,
        count INTEGER NOT NULL,
        vectors BLOB NOT NULL,
        PRIMARY KEY (entry_id, encoder_id)
    );
    CREATE TABLE lookups (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        prompt TEXT NOT NULL,
        hit INTEGER NOT NULL,
        entry_id TEXT,
        similarity REAL,
        reason TEXT NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path, timeout: float = 15.0) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=timeout, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    # Per connection. With WAL, NORMAL syncs at checkpoints, not at every commit: a power cut may lose the
    # last commits (the sidecars let recovery re-register those entries) but never corrupts the database.
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> list[int]:
    """Brings the database to `target`, one transaction per step; returns the versions applied."""
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":  # e.g. a network drive: still works, with rollback journaling
        conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA synchronous = NORMAL")
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise CacheError(
            f"The fragment cache database was created by a newer HeadRoom (schema {current}; this version "
            f"knows up to {SCHEMA_VERSION}). Update HeadRoom, or point it at another cache folder."
        )
    applied = []
    for version in range(current, target):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if schema_version(conn) != version:  # another process migrated meanwhile
                conn.execute("ROLLBACK")
                continue
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(version + 1)
    return applied
