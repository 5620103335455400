"""Atomic file writes: temp file in the same folder, fsync, rename. A crash or full disk never leaves half a file."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from core.errors import HeadRoomError

TEMP_SUFFIX = ".partial"


class DiskFullError(HeadRoomError):
    pass


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a temporary path beside `target`; on success it is fsynced and renamed over `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise DiskFullError(
                f"The disk is full: could not write {target}. Nothing was overwritten; free some space and retry."
            ) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: str | os.PathLike[str], text: str) -> None:
    write_bytes_atomic(target, text.encode("utf-8"))


def write_json_atomic(target: str | os.PathLike[str], obj: Any) -> None:
    write_text_atomic(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_with_atomic(target: str | os.PathLike[str], writer: Callable[[Path], None]) -> None:
    """`writer(tmp_path)` writes the file (e.g. safetensors.save_file); this makes it atomic."""
    with atomic_path(target) as tmp:
        writer(tmp)


def save_safetensors_atomic(tensors: dict, target: str | os.PathLike[str], metadata: dict | None = None) -> None:
    from safetensors.torch import save_file

    write_with_atomic(target, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def read_user_text_or_json(path, error: type, what: str):
    """Reads a user's input file: returns (text, parsed JSON or None for non-.json files).

    Every problem raises `error` with a message naming the file: missing, not UTF-8, invalid JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"No {what} at {path}.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise error(f"{path} is not UTF-8 text. Save the {what} as UTF-8.") from None
    if path.suffix.lower() != ".json":
        return text, None
    try:
        return text, json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}).") from None
