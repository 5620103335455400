"""Crash robustness: a writer killed mid-copy, rows without folders, folders without rows, a broken database,
stale leases. Opening the cache repairs or reports each; none is fatal."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap

from core.cache import CacheKey, FragmentCache
from core.cache.schema import connect


def make_fragment(folder, payload: bytes):
    (folder / "unet").mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")
    (folder / "unet" / "w.bin").write_bytes(payload)
    return folder


def key(i):
    return CacheKey.make("base", {"r": 1}, [f"p{i}"])


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_writer_killed_mid_copy_leaves_nothing_visible_and_the_next_start_cleans_up(tmp_path):
    src = make_fragment(tmp_path / "frag", b"y" * 300_000)
    script = textwrap.dedent(f"""
        import os, core.cache.integrity as integrity
        from core.cache import CacheKey, FragmentCache
        real_open = open
        def dying_copy(source, target):
            target.mkdir(parents=True)
            with real_open(target / "manifest.json", "wb") as f:
                f.write(b"{{")  # half written
            os._exit(9)  # the process dies here, as in a power cut or kill -9
        import core.cache.store as store
        store.copy_tree_synced = dying_copy
        FragmentCache({str(tmp_path / "c")!r}).put(CacheKey.make("base", {{"r": 1}}, ["p9"]), {str(src)!r}, ["p9"])
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=str(tmp_path.parent), capture_output=True,
                          env={"PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1])})
    assert proc.returncode == 9, proc.stderr
    leftovers = list((tmp_path / "c" / "tmp").iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.endswith(".partial")
    cache = FragmentCache(tmp_path / "c")
    assert cache.report.temp_removed == [leftovers[0].name]
    assert not list(cache.tmp_dir.iterdir()) and cache.entries() == []
    assert cache.put(key(9), src, ["p9"]).size_bytes == 300_002  # the cache works after the crash


def test_temp_folder_of_a_live_writer_is_left_alone(tmp_path):
    cache = FragmentCache(tmp_path)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        busy = cache.tmp_dir / f"{live.pid}-abc.partial"
        busy.mkdir()
        dead = cache.tmp_dir / f"{_dead_pid()}-def.partial"
        dead.mkdir()
        report = FragmentCache(tmp_path).report
        assert report.temp_removed == [dead.name] and busy.exists()
    finally:
        live.kill()
        live.wait()


def test_row_without_folder_is_forgotten_and_reported(tmp_path):
    cache = FragmentCache(tmp_path / "c")
    keep = cache.put(key(1), make_fragment(tmp_path / "a", b"a"), ["p1"])
    lost = cache.put(key(2), make_fragment(tmp_path / "b", b"b"), ["p2"])
    import shutil

    shutil.rmtree(lost.path)
    reopened = FragmentCache(tmp_path / "c")
    assert reopened.report.rows_without_files == [lost.id]
    assert [e.id for e in reopened.entries()] == [keep.id]
    assert any("folder is missing" in line for line in reopened.report.lines())


def test_folder_without_row_is_reregistered_from_its_sidecar(tmp_path):
    cache = FragmentCache(tmp_path / "c")
    entry = cache.put(key(1), make_fragment(tmp_path / "a", b"a" * 10), ["p1", "p1 again"], meta={"m": 1})
    with contextlib.closing(connect(cache.db_path)) as conn:  # as if the crash came before the row's commit
        conn.execute("DELETE FROM entries WHERE id = ?", (entry.id,))
    reopened = FragmentCache(tmp_path / "c")
    assert reopened.report.files_reregistered == [entry.id]
    again = reopened.get(key(1))
    assert again.prompts == ["p1", "p1 again"] and again.meta == {"m": 1} and again.sha256 == entry.sha256


def test_unknown_or_damaged_folder_without_row_is_quarantined(tmp_path):
    cache = FragmentCache(tmp_path / "c")
    stray = cache.entries_dir / "not-an-entry"
    stray.mkdir()
    (stray / "x").write_text("?")
    entry = cache.put(key(1), make_fragment(tmp_path / "a", b"a" * 10), ["p1"])
    with contextlib.closing(connect(cache.db_path)) as conn:
        conn.execute("DELETE FROM entries WHERE id = ?", (entry.id,))
    (entry.path / "unet" / "w.bin").write_bytes(b"tampered!!")
    reopened = FragmentCache(tmp_path / "c")
    quarantined = " ".join(reopened.report.files_quarantined)
    assert "not-an-entry (no sidecar)" in quarantined and f"{entry.id} (unet/w.bin has sha256" in quarantined
    assert reopened.entries() == [] and len(list(reopened.quarantine_dir.iterdir())) == 3  # 2 folders + sidecar


def test_unreadable_database_is_moved_aside_and_rebuilt_from_sidecars(tmp_path):
    cache = FragmentCache(tmp_path / "c")
    entry = cache.put(key(1), make_fragment(tmp_path / "a", b"a" * 10), ["p1"])
    for suffix in ("-wal", "-shm"):
        (tmp_path / "c" / f"cache.sqlite3{suffix}").unlink(missing_ok=True)
    (tmp_path / "c" / "cache.sqlite3").write_bytes(b"this is not a database" * 100)
    reopened = FragmentCache(tmp_path / "c")
    assert reopened.report.database_rebuilt and reopened.report.files_reregistered == [entry.id]
    assert reopened.get(key(1)).prompts == ["p1"]
    assert list((tmp_path / "c").glob("cache.sqlite3.broken-*"))


def test_stale_lease_of_a_dead_process_does_not_pin_forever(tmp_path):
    cache = FragmentCache(tmp_path / "c", budget_bytes=1100)
    entry = cache.put(key(1), make_fragment(tmp_path / "a", b"a" * 1000), ["p1"])
    with contextlib.closing(connect(cache.db_path)) as conn:
        conn.execute("INSERT INTO leases (entry_id, pid, created_at) VALUES (?, ?, 0)", (entry.id, _dead_pid()))
    assert not cache.leased(entry.id)
    cache.put(key(2), make_fragment(tmp_path / "b", b"b" * 1000), ["p2"])  # evicts the stale-pinned entry
    assert [e.id for e in cache.entries()] == [key(2).entry_id]
    assert FragmentCache(tmp_path / "c").report.stale_leases == 0  # its lease row went with the entry


def test_crash_while_replacing_an_entry_keeps_the_new_copy_consistent(tmp_path):
    cache = FragmentCache(tmp_path / "c")
    old = cache.put(key(1), make_fragment(tmp_path / "a", b"old"), ["p1"])
    old_row = dict(old.__dict__)
    cache.put(key(1), make_fragment(tmp_path / "b", b"new!"), ["p1"])
    with contextlib.closing(connect(cache.db_path)) as conn:  # the replacing transaction never committed
        conn.execute("UPDATE entries SET sha256 = ?, files_json = ?, size_bytes = ? WHERE id = ?",
                     (old_row["sha256"], json.dumps(old_row["files"]), old_row["size_bytes"], old.id))
    reopened = FragmentCache(tmp_path / "c")
    assert reopened.report.files_reregistered == [old.id]
    with reopened.lease(old.id) as entry:  # verifies: the row now describes the files on disk
        assert (entry.path / "unet" / "w.bin").read_bytes() == b"new!"
