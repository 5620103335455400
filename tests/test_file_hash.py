"""Weight-file hashes are remembered by path, size and mtime, recomputed when the file changes."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from core.loading import file_hash


@pytest.fixture
def memory(tmp_path, monkeypatch):
    path = tmp_path / "hashes.json"
    monkeypatch.setenv(file_hash.ENV_HASH_CACHE, str(path))
    return path


def _count_hashing(monkeypatch):
    calls = []
    real = file_hash.file_sha256

    def counting(path, *args, **kwargs):
        calls.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(file_hash, "file_sha256", counting)
    return calls


def test_hash_is_computed_once_then_remembered(tmp_path, memory, monkeypatch):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"x" * 100_000)
    calls = _count_hashing(monkeypatch)
    first = file_hash.cached_file_sha256(weights)
    second = file_hash.cached_file_sha256(weights)
    assert first == second == hashlib.sha256(b"x" * 100_000).hexdigest()
    assert len(calls) == 1
    assert json.loads(memory.read_text())[str(weights.resolve())]["sha256"] == first


def test_changed_file_is_hashed_again(tmp_path, memory, monkeypatch):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"a" * 1000)
    old = file_hash.cached_file_sha256(weights)
    weights.write_bytes(b"b" * 1000)  # same size: the modification time tells
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    new = file_hash.cached_file_sha256(weights)
    assert new != old and new == hashlib.sha256(b"b" * 1000).hexdigest()


def test_damaged_memory_file_is_ignored_and_rewritten(tmp_path, memory):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"abc")
    memory.write_text("{not json")
    assert file_hash.cached_file_sha256(weights) == hashlib.sha256(b"abc").hexdigest()
    assert str(weights.resolve()) in json.loads(memory.read_text())


def test_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(file_hash.ENV_HASH_CACHE, "off")
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"abc")
    assert file_hash.cached_file_sha256(weights) == hashlib.sha256(b"abc").hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_memory_keeps_only_the_newest_entries(tmp_path, memory, monkeypatch):
    monkeypatch.setattr(file_hash, "MAX_ENTRIES", 3)
    for i in range(5):
        (tmp_path / f"m{i}.safetensors").write_bytes(bytes([i]))
        file_hash.cached_file_sha256(tmp_path / f"m{i}.safetensors")
    kept = json.loads(memory.read_text())
    assert [os.path.basename(k) for k in kept] == ["m2.safetensors", "m3.safetensors", "m4.safetensors"]
