"""Copying a fragment folder into the cache with fsync, and hashing it file by file."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from core.loading.file_hash import file_sha256

CHUNK = 1 << 20


def tree_files(root: Path) -> list[Path]:
    """Regular files under `root`, sorted by relative path; links are refused (the cache copies data)."""
    files = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            continue
        if path.is_file():
            files.append(path)
    return files


def manifest_of(root: Path) -> dict[str, list]:
    """{relative posix path: [size, sha256]} for every file under `root`."""
    return {p.relative_to(root).as_posix(): [p.stat().st_size, file_sha256(p)] for p in tree_files(root)}


def digest_of_manifest(files: dict[str, list]) -> str:
    digest = hashlib.sha256()
    for rel in sorted(files):
        size, sha = files[rel]
        digest.update(f"{rel}\0{size}\0{sha}\n".encode())
    return digest.hexdigest()


def copy_tree_synced(source: Path, target: Path) -> dict[str, list]:
    """Copies the files of `source` (a folder, or one file) into a new folder `target`, fsyncs each, and
    returns the manifest of what was written, hashed from the copy."""
    target.mkdir(parents=True)
    sources = [source] if source.is_file() else tree_files(source)
    files: dict[str, list] = {}
    for src in sources:
        rel = src.name if source.is_file() else src.relative_to(source).as_posix()
        dst = target / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            for block in iter(lambda: fin.read(CHUNK), b""):
                digest.update(block)
                fout.write(block)
                size += len(block)
            fout.flush()
            os.fsync(fout.fileno())
        shutil.copystat(src, dst, follow_symlinks=False)
        files[rel] = [size, digest.hexdigest()]
    return files


def verify(root: Path, files: dict[str, list]) -> list[str]:
    """Problems found comparing `root` with its stored manifest (empty when it is intact)."""
    problems = []
    present = {p.relative_to(root).as_posix() for p in tree_files(root)} if root.is_dir() else set()
    for rel, (size, sha) in sorted(files.items()):
        path = root / rel
        if rel not in present:
            problems.append(f"{rel} is missing")
            continue
        actual_size = path.stat().st_size
        if actual_size != size:
            problems.append(f"{rel} has {actual_size} bytes, expected {size}")
            continue
        actual = file_sha256(path)
        if actual != sha:
            problems.append(f"{rel} has sha256 {actual[:16]}..., expected {sha[:16]}...")
    for rel in sorted(present - set(files)):
        problems.append(f"{rel} is not part of the cached fragment")
    return problems
