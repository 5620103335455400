"""The fragment cache: fragment folders stored as opaque artifacts plus metadata in SQLite.

Layout of the cache folder:
    cache.sqlite3            metadata (WAL), schema version in PRAGMA user_version
    entries/<id>/            a copy of the fragment folder, exactly as given
    entries/<id>.entry.json  sidecar: the row's content, so a lost or broken database can be rebuilt
    tmp/<pid>-<uuid>.partial copies in progress (removed at start when their process is gone)
    quarantine/              folders found without a row and without a usable sidecar

A write copies into tmp/, writes the sidecar atomically, renames the folder into entries/, then inserts the
row: a crash at any point leaves either nothing, an orphaned temp folder, or a folder the next start can
re-register from its sidecar. Eviction is least-recently-used within a byte budget and never touches an
entry leased by a live process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.cache.errors import CacheEntryInUseError, CacheError, CacheFullError, CacheIntegrityError
from core.cache.integrity import copy_tree_synced, digest_of_manifest, verify
from core.cache.keys import CacheKey, normalise_prompt, reduction_json
from core.cache.location import default_cache_dir
from core.cache.schema import SCHEMA_VERSION, connect, migrate
from core.io import write_json_atomic

log = logging.getLogger(__name__)

DB_NAME = "cache.sqlite3"
SIDECAR_SUFFIX = ".entry.json"
DEFAULT_BUDGET_BYTES = 20 * 1024**3


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        import psutil

        return psutil.pid_exists(pid)
    except ImportError:  # pragma: no cover
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True


@dataclass
class CacheEntry:
    id: str
    key: CacheKey
    path: Path
    name: str
    prompts: list[str]
    size_bytes: int
    sha256: str
    files: dict
    meta: dict
    reduction: dict
    created_at: float
    last_used_at: float
    use_count: int


@dataclass
class RecoveryReport:
    """What opening the cache found and did. Nothing here is fatal."""

    temp_removed: list[str] = field(default_factory=list)
    rows_without_files: list[str] = field(default_factory=list)  # rows removed
    files_reregistered: list[str] = field(default_factory=list)  # folders re-added from their sidecar
    files_quarantined: list[str] = field(default_factory=list)  # folders moved aside, with why
    stale_leases: int = 0
    database_rebuilt: bool = False
    migrations_applied: list[int] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.temp_removed or self.rows_without_files or self.files_reregistered
                    or self.files_quarantined or self.database_rebuilt)

    def lines(self) -> list[str]:
        out = [f"removed an unfinished copy: {n}" for n in self.temp_removed]
        out += [f"forgot entry {n}: its folder is missing" for n in self.rows_without_files]
        out += [f"re-registered {n} from its sidecar" for n in self.files_reregistered]
        out += [f"moved aside: {n}" for n in self.files_quarantined]
        if self.database_rebuilt:
            out.append("the cache database was unreadable: it was moved aside and rebuilt from the sidecars")
        return out


class FragmentCache:
    def __init__(self, root=None, budget_bytes: int | None = None, recover: bool = True):
        self.root = default_cache_dir(root)
        self.entries_dir = self.root / "entries"
        self.tmp_dir = self.root / "tmp"
        self.quarantine_dir = self.root / "quarantine"
        try:
            for folder in (self.entries_dir, self.tmp_dir):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"Cannot create the fragment cache in {self.root}: {exc.strerror}. "
                             "Choose another folder (HEADROOM_CACHE_DIR).") from exc
        self.db_path = self.root / DB_NAME
        self.report = RecoveryReport()
        self._local = threading.local()
        self._all_lock = threading.Lock()
        self._all_connections: list[sqlite3.Connection] = []
        self._open_database()
        if budget_bytes is not None:
            self.budget_bytes = budget_bytes
        if recover:
            self.recover()

    # ---- database -------------------------------------------------------------------------------------
    def _open_database(self) -> None:
        try:
            with contextlib.closing(connect(self.db_path)) as conn:
                conn.execute("PRAGMA quick_check").fetchone()
                self.report.migrations_applied = migrate(conn)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise CacheError(f"The fragment cache in {self.root} is busy (locked by another program).") from exc
            broken = self.db_path.with_name(f"{DB_NAME}.broken-{int(time.time())}")
            log.error("Fragment cache database %s unreadable (%s): moved to %s, rebuilding.", self.db_path, exc, broken)
            for suffix in ("", "-wal", "-shm"):
                src = Path(str(self.db_path) + suffix)
                if src.exists():
                    os.replace(src, Path(str(broken) + suffix))
            with contextlib.closing(connect(self.db_path)) as conn:
                self.report.migrations_applied = migrate(conn)
            self.report.database_rebuilt = True

    def _connection(self) -> sqlite3.Connection:
        """One connection per thread and process, kept open: opening one per call and closing it (which
        checkpoints the WAL) cost more than the lookups themselves."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = connect(self.db_path)
            self._local.conn, self._local.pid, self._local.writes, self._local.memo = conn, os.getpid(), 0, {}
            with self._all_lock:
                self._all_connections.append(conn)
        return conn

    @contextlib.contextmanager
    def _db(self, write: bool = False, content: bool = True) -> Iterator[sqlite3.Connection]:
        """A transaction when `write`; `content=False` for writes that change no entry (the lookup log)."""
        conn = self._connection()
        if write:
            conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            if write:
                conn.execute("COMMIT")
                self._local.writes += int(content)
        except BaseException:
            if write and conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Closes this object's database connections (the cache stays usable: they reopen on demand)."""
        with self._all_lock:
            connections, self._all_connections = self._all_connections, []
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    def __enter__(self) -> FragmentCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def budget_bytes(self) -> int:
        with self._db() as conn:
            row = conn.execute("SELECT value FROM settings WHERE name = 'budget_bytes'").fetchone()
        return int(row[0]) if row else DEFAULT_BUDGET_BYTES

    @budget_bytes.setter
    def budget_bytes(self, value: int) -> None:
        if int(value) <= 0:
            raise CacheError(f"The cache budget must be a positive number of bytes, not {value}.")
        with self._db(write=True) as conn:
            conn.execute("INSERT OR REPLACE INTO settings (name, value) VALUES ('budget_bytes', ?)", (str(int(value)),))

    def schema_version(self) -> int:
        with self._db() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    # ---- recovery -------------------------------------------------------------------------------------
    def recover(self) -> RecoveryReport:
        """Cleans up after crashes; reports what it did (also in `self.report`). Never raises for damage."""
        report = self.report
        for item in sorted(self.tmp_dir.iterdir()) if self.tmp_dir.is_dir() else []:
            pid_text = item.name.split("-", 1)[0]
            owner = int(pid_text) if pid_text.isdigit() else None
            if owner is not None and owner != os.getpid() and _pid_alive(owner):
                continue  # another process is writing it right now
            if owner == os.getpid():
                continue
            _remove(item)
            report.temp_removed.append(item.name)
        with self._db(write=True) as conn:
            leases = conn.execute("SELECT id, pid FROM leases").fetchall()
            stale = [row["id"] for row in leases if not _pid_alive(row["pid"])]
            conn.executemany("DELETE FROM leases WHERE id = ?", [(i,) for i in stale])
            report.stale_leases += len(stale)
            ids = [row["id"] for row in conn.execute("SELECT id FROM entries")]
            for entry_id in ids:
                if not (self.entries_dir / entry_id).is_dir():
                    conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
                    (self.entries_dir / f"{entry_id}{SIDECAR_SUFFIX}").unlink(missing_ok=True)
                    report.rows_without_files.append(entry_id)
                    log.warning("Fragment cache: entry %s had no folder; forgotten.", entry_id)
        known = set(ids) - set(report.rows_without_files)
        self._reconcile_replaced(known)
        for item in sorted(self.entries_dir.iterdir()):
            if item.name.endswith(SIDECAR_SUFFIX):
                if not (self.entries_dir / item.name[: -len(SIDECAR_SUFFIX)]).is_dir():
                    item.unlink(missing_ok=True)  # a sidecar whose copy never arrived
                continue
            if item.name in known:
                continue
            self._adopt_or_quarantine(item)
        return report

    def _reconcile_replaced(self, known: set) -> None:
        """A crash while replacing an entry can leave the new folder and sidecar with the old row: when the
        sidecar disagrees with the row and the folder matches the sidecar, the row is rewritten from it."""
        with self._db() as conn:
            rows = {r["id"]: r["sha256"] for r in conn.execute("SELECT id, sha256 FROM entries")}
        for entry_id in sorted(known):
            sidecar = self.entries_dir / f"{entry_id}{SIDECAR_SUFFIX}"
            try:
                record = json.loads(sidecar.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if record.get("sha256") == rows.get(entry_id) or verify(self.entries_dir / entry_id, record.get("files", {})):
                continue
            with self._db(write=True) as conn:
                conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
                self._insert(conn, record)
            self.report.files_reregistered.append(entry_id)
            log.warning("Fragment cache: %s was being replaced during a crash; its record was updated.", entry_id)

    def _adopt_or_quarantine(self, folder: Path) -> None:
        sidecar = self.entries_dir / f"{folder.name}{SIDECAR_SUFFIX}"
        why = "no sidecar"
        if folder.is_dir() and sidecar.is_file():
            try:
                record = json.loads(sidecar.read_text(encoding="utf-8"))
                problems = verify(folder, record["files"])
                if not problems and record["id"] == folder.name:
                    with self._db(write=True) as conn:
                        self._insert(conn, record)
                    self.report.files_reregistered.append(folder.name)
                    log.warning("Fragment cache: re-registered %s from its sidecar.", folder.name)
                    return
                why = "; ".join(problems[:3]) or "sidecar names another entry"
            except (OSError, ValueError, KeyError, TypeError, sqlite3.IntegrityError) as exc:
                why = f"unreadable sidecar ({exc})"
        self.quarantine_dir.mkdir(exist_ok=True)
        target = self.quarantine_dir / f"{folder.name}-{int(time.time())}"
        try:
            os.replace(folder, target)
            if sidecar.exists():
                os.replace(sidecar, Path(str(target) + SIDECAR_SUFFIX))
        except OSError as exc:
            why += f"; could not move it ({exc.strerror})"
        self.report.files_quarantined.append(f"{folder.name} ({why})")
        log.warning("Fragment cache: %s has no valid record (%s); moved to %s.", folder.name, why, target)

    # ---- writing --------------------------------------------------------------------------------------
    def put(
        self,
        key: CacheKey,
        fragment: str | os.PathLike[str],
        prompts: Iterable[str],
        reduction: Any = None,
        name: str = "",
        meta: dict | None = None,
    ) -> CacheEntry:
        """Copies `fragment` (a folder or a single file) into the cache under `key` and returns the entry.

        An entry with the same key is replaced unless it is leased. Older entries are evicted (LRU, never
        leased ones) to stay within the budget."""
        source = Path(fragment)
        if not source.exists():
            raise CacheError(f"Cannot cache {source}: it does not exist.")
        prompts = [p for p in (str(p).strip() for p in prompts) if p]
        entry_id = key.entry_id
        tmp = self.tmp_dir / f"{os.getpid()}-{uuid.uuid4().hex}.partial"
        try:
            files = copy_tree_synced(source, tmp)
        except OSError as exc:
            _remove(tmp)
            raise CacheError(f"Could not copy {source} into the cache ({exc.strerror or exc}). Nothing was changed.") from exc
        size = sum(size for size, _ in files.values())
        budget = self.budget_bytes
        if size > budget:
            _remove(tmp)
            raise CacheFullError(
                f"The fragment is {_mb(size)}, more than the whole cache budget ({_mb(budget)}). "
                "Raise the budget or keep this fragment outside the cache."
            )
        now = time.time()
        record = {
            "id": entry_id, "base_model_hash": key.base_model_hash, "reduction_fp": key.reduction_fp,
            "reduction_json": reduction_json(reduction), "prompt_fp": key.prompt_fp, "name": name or source.name,
            "size_bytes": size, "sha256": digest_of_manifest(files), "files": files, "meta": meta or {},
            "created_at": now, "last_used_at": now, "use_count": 0, "prompts": prompts,
        }
        target = self.entries_dir / entry_id
        try:
            self._make_room(size, keep=entry_id)
            with self._db(write=True) as conn:
                if conn.execute("SELECT 1 FROM leases WHERE entry_id = ?", (entry_id,)).fetchone() and self._live_leases(conn, entry_id):
                    raise CacheEntryInUseError(
                        f"The cached fragment {entry_id} is in use; it cannot be replaced until it is released."
                    )
                old = conn.execute("SELECT id FROM entries WHERE id = ?", (entry_id,)).fetchone()
                if old:
                    conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
                if target.exists():
                    trash = self.tmp_dir / f"{os.getpid()}-{uuid.uuid4().hex}.old"
                    os.replace(target, trash)
                else:
                    trash = None
                write_json_atomic(self.entries_dir / f"{entry_id}{SIDECAR_SUFFIX}", record)
                os.replace(tmp, target)
                self._insert(conn, record)
            if trash is not None:
                _remove(trash)
        finally:
            _remove(tmp)
        return self._entry_from_record(record)

    def _insert(self, conn: sqlite3.Connection, record: dict) -> None:
        conn.execute(
            "INSERT INTO entries (id, base_model_hash, reduction_fp, reduction_json, prompt_fp, name, size_bytes,"
            " sha256, files_json, meta_json, created_at, last_used_at, use_count)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record["id"], record["base_model_hash"], record["reduction_fp"], record["reduction_json"],
             record["prompt_fp"], record["name"], record["size_bytes"], record["sha256"],
             json.dumps(record["files"]), json.dumps(record["meta"]), record["created_at"],
             record["last_used_at"], record["use_count"]),
        )
        conn.executemany("INSERT INTO prompts (entry_id, idx, text) VALUES (?, ?, ?)",
                         [(record["id"], i, p) for i, p in enumerate(record["prompts"])])

    @staticmethod
    def _live_leases(conn: sqlite3.Connection, entry_id: str) -> int:
        rows = conn.execute("SELECT pid FROM leases WHERE entry_id = ?", (entry_id,)).fetchall()
        return sum(1 for row in rows if _pid_alive(row["pid"]))

    def _make_room(self, incoming: int, keep: str) -> list[str]:
        """Evicts least-recently-used entries not leased until `incoming` more bytes fit in the budget."""
        budget = self.budget_bytes
        evicted = []
        with self._db() as conn:
            rows = conn.execute(
                "SELECT id, size_bytes FROM entries WHERE id != ? ORDER BY last_used_at ASC", (keep,)
            ).fetchall()
            used = sum(r["size_bytes"] for r in rows)
            leased = {r["entry_id"] for r in conn.execute("SELECT entry_id, pid FROM leases") if _pid_alive(r["pid"])}
        for row in rows:
            if used + incoming <= budget:
                break
            if row["id"] in leased:
                continue
            if self._remove_entry(row["id"], only_if_unleased=True):
                used -= row["size_bytes"]
                evicted.append(row["id"])
                log.info("Fragment cache: evicted %s (least recently used).", row["id"])
        if used + incoming > budget:
            raise CacheFullError(
                f"The fragment cache budget ({_mb(budget)}) is taken by fragments in use ({_mb(used)}); "
                f"{_mb(incoming)} more do not fit. Release them, or raise the budget."
            )
        return evicted

    def _remove_entry(self, entry_id: str, only_if_unleased: bool) -> bool:
        with self._db(write=True) as conn:
            if only_if_unleased and self._live_leases(conn, entry_id):
                return False
            conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
            folder = self.entries_dir / entry_id
            trash = None
            if folder.exists():
                trash = self.tmp_dir / f"{os.getpid()}-{uuid.uuid4().hex}.old"
                os.replace(folder, trash)
            (self.entries_dir / f"{entry_id}{SIDECAR_SUFFIX}").unlink(missing_ok=True)
        if trash is not None:
            _remove(trash)
        return True

    def remove(self, entry_id: str) -> None:
        if not self._remove_entry(entry_id, only_if_unleased=True):
            raise CacheEntryInUseError(f"The cached fragment {entry_id} is in use; release it before removing it.")

    def evict_to_budget(self) -> list[str]:
        return self._make_room(0, keep="")

    # ---- reading --------------------------------------------------------------------------------------
    def _entry_from_record(self, r: dict) -> CacheEntry:
        return CacheEntry(
            id=r["id"], key=CacheKey(r["base_model_hash"], r["reduction_fp"], r["prompt_fp"]),
            path=self.entries_dir / r["id"], name=r["name"], prompts=list(r["prompts"]),
            size_bytes=r["size_bytes"], sha256=r["sha256"], files=r["files"], meta=r["meta"],
            reduction=json.loads(r["reduction_json"]), created_at=r["created_at"],
            last_used_at=r["last_used_at"], use_count=r["use_count"],
        )

    def _entry_from_row(self, conn: sqlite3.Connection, row: sqlite3.Row) -> CacheEntry:
        prompts = [p["text"] for p in conn.execute("SELECT text FROM prompts WHERE entry_id = ? ORDER BY idx", (row["id"],))]
        record = dict(row)
        record.update(files=json.loads(row["files_json"]), meta=json.loads(row["meta_json"]), prompts=prompts)
        return self._entry_from_record(record)

    def entry(self, entry_id: str) -> CacheEntry | None:
        with self._db() as conn:
            row = conn.execute("SELECT * FROM entries WHERE id = ?", (entry_id,)).fetchone()
            return self._entry_from_row(conn, row) if row else None

    def get(self, key: CacheKey) -> CacheEntry | None:
        """The entry stored under exactly this key, or None. Does not verify or touch it."""
        return self.entry(key.entry_id)

    def entries(self, base_model_hash: str | None = None) -> list[CacheEntry]:
        with self._db() as conn:
            if base_model_hash is None:
                rows = conn.execute("SELECT * FROM entries ORDER BY last_used_at DESC").fetchall()
            else:
                rows = conn.execute("SELECT * FROM entries WHERE base_model_hash = ? ORDER BY last_used_at DESC",
                                    (base_model_hash,)).fetchall()
            return [self._entry_from_row(conn, row) for row in rows]

    def total_bytes(self) -> int:
        with self._db() as conn:
            return int(conn.execute("SELECT COALESCE(SUM(size_bytes), 0) FROM entries").fetchone()[0])

    def verify_entry(self, entry: CacheEntry) -> None:
        """Raises CacheIntegrityError naming each damaged file when the copy differs from what was stored."""
        problems = verify(entry.path, entry.files)
        if problems:
            raise CacheIntegrityError(
                f"The cached fragment {entry.name!r} ({entry.id}) is damaged: " + "; ".join(problems[:5])
                + ". It was not loaded. Remove it from the cache and extract or import the fragment again."
            )

    def touch(self, entry_id: str) -> None:
        with self._db(write=True) as conn:
            conn.execute("UPDATE entries SET last_used_at = ?, use_count = use_count + 1 WHERE id = ?",
                         (time.time(), entry_id))

    @contextlib.contextmanager
    def lease(self, entry_id: str, verify_integrity: bool = True) -> Iterator[CacheEntry]:
        """Pins an entry while it is in use (eviction and replacement skip it) and yields it, verified."""
        with self._db(write=True) as conn:
            if not conn.execute("SELECT 1 FROM entries WHERE id = ?", (entry_id,)).fetchone():
                raise CacheError(f"No cached fragment {entry_id}; it may have been evicted or removed.")
            lease_id = conn.execute("INSERT INTO leases (entry_id, pid, created_at) VALUES (?, ?, ?)",
                                    (entry_id, os.getpid(), time.time())).lastrowid
            conn.execute("UPDATE entries SET last_used_at = ?, use_count = use_count + 1 WHERE id = ?",
                         (time.time(), entry_id))
        try:
            entry = self.entry(entry_id)
            if verify_integrity:
                self.verify_entry(entry)
            yield entry
        finally:
            with self._db(write=True) as conn:
                conn.execute("DELETE FROM leases WHERE id = ?", (lease_id,))

    def leased(self, entry_id: str) -> bool:
        with self._db() as conn:
            return self._live_leases(conn, entry_id) > 0

    # ---- embeddings and lookup log (used by core.reuse) -------------------------------------------------
    def set_embeddings(self, entry_id: str, encoder_id: str, vectors) -> None:
        import numpy as np

        array = np.ascontiguousarray(vectors, dtype=np.float32)
        if array.ndim != 2:
            raise CacheError(f"Embeddings must be a (prompts, dim) array, got shape {array.shape}.")
        with self._db(write=True) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO embeddings (entry_id, encoder_id, dim, count, vectors) VALUES (?, ?, ?, ?, ?)",
                (entry_id, encoder_id, array.shape[1], array.shape[0], array.tobytes()),
            )

    def change_stamp(self) -> tuple[int, int]:
        """Changes whenever anything was committed to the database, by this object or any other connection."""
        conn = self._connection()
        return int(conn.execute("PRAGMA data_version").fetchone()[0]), self._local.writes

    def memo(self, name: str, compute):
        """`compute()`, remembered (per thread) until the database changes."""
        self._connection()
        stamp = self.change_stamp()
        hit = self._local.memo.get(name)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        value = compute()
        self._local.memo[name] = (self.change_stamp(), value)
        return value

    def entries_missing_embeddings(self, base_model_hash: str, encoder_id: str) -> list[CacheEntry]:
        with self._db() as conn:
            rows = conn.execute(
                "SELECT e.* FROM entries e LEFT JOIN embeddings m ON m.entry_id = e.id AND m.encoder_id = ?"
                " WHERE e.base_model_hash = ? AND m.entry_id IS NULL", (encoder_id, base_model_hash),
            ).fetchall()
            return [self._entry_from_row(conn, row) for row in rows]

    def embeddings(self, base_model_hash: str, encoder_id: str):
        """(entry ids, owner index per row, (rows, dim) float32 matrix) for every entry of this base model.

        Kept in memory until the database changes, so repeated lookups do not re-read every vector."""
        return self.memo(f"embeddings|{base_model_hash}|{encoder_id}",
                         lambda: self._read_embeddings(base_model_hash, encoder_id))

    def _read_embeddings(self, base_model_hash: str, encoder_id: str):
        import numpy as np

        with self._db() as conn:
            cursor = conn.execute(
                "SELECT e.id, m.dim, m.count, m.vectors FROM entries e JOIN embeddings m ON m.entry_id = e.id"
                " WHERE e.base_model_hash = ? AND m.encoder_id = ? AND m.count > 0", (base_model_hash, encoder_id),
            )
            cursor.row_factory = None  # plain tuples: this reads every entry
            rows = cursor.fetchall()
        if not rows:
            return [], np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        ids = [row[0] for row in rows]
        dims = {row[1] for row in rows}
        if len(dims) != 1:
            raise CacheError(f"Cached embeddings of one encoder have different widths {sorted(dims)}; "
                             "remove the cache's embeddings table rows to rebuild them.")
        counts = np.fromiter((row[2] for row in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(row[3] for row in rows), dtype=np.float32).reshape(-1, dims.pop())
        return ids, np.repeat(np.arange(len(rows)), counts), matrix

    def log_lookup(self, prompt: str, hit: bool, entry_id: str | None, similarity: float | None, reason: str) -> None:
        with self._db(write=True, content=False) as conn:
            conn.execute("INSERT INTO lookups (ts, prompt, hit, entry_id, similarity, reason) VALUES (?, ?, ?, ?, ?, ?)",
                         (time.time(), normalise_prompt(prompt), int(hit), entry_id, similarity, reason))

    def hit_rate(self, since: float = 0.0) -> tuple[int, int]:
        """(hits, lookups) logged since `since` (a time.time() value)."""
        with self._db() as conn:
            row = conn.execute("SELECT COALESCE(SUM(hit), 0), COUNT(*) FROM lookups WHERE ts >= ?", (since,)).fetchone()
        return int(row[0]), int(row[1])


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink(missing_ok=True)
    except OSError:
        log.warning("Could not remove %s", path)


def _mb(n: int) -> str:
    return f"{n / 1024**2:.1f} MiB" if n >= 1024**2 else f"{n} bytes"


__all__ = ["SCHEMA_VERSION", "CacheEntry", "FragmentCache", "RecoveryReport"]
