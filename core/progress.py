"""Progress and cancellation for long operations, with no threads and no Qt.

A compute function takes a `ProgressSink`. Every `report()` is also a cancel point: it raises
`CancelledError` once the token is set, so a worker stops within one unit of work.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from core.errors import CancelledError


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise CancelledError("Cancelled by the user.")


@dataclass
class ProgressEvent:
    done: int
    total: int
    message: str = ""
    elapsed_s: float = 0.0
    payload: Any = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def eta_s(self) -> Optional[float]:
        if self.done <= 0 or self.total <= 0:
            return None
        return self.elapsed_s / self.done * (self.total - self.done)


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass
class ProgressSink:
    """What a long operation reports to. Both parts are optional."""

    callback: Optional[ProgressCallback] = None
    token: Optional[CancelToken] = None
    _start: float = field(default_factory=time.perf_counter)

    def report(self, done: int, total: int, message: str = "", payload: Any = None) -> None:
        if self.token is not None:
            self.token.raise_if_cancelled()
        if self.callback is not None:
            self.callback(ProgressEvent(done, total, message, time.perf_counter() - self._start, payload))

    def check(self) -> None:
        if self.token is not None:
            self.token.raise_if_cancelled()

    def restart_clock(self) -> None:
        self._start = time.perf_counter()


def as_sink(progress: "ProgressSink | ProgressCallback | None", token: Optional[CancelToken] = None) -> ProgressSink:
    if isinstance(progress, ProgressSink):
        if token is not None and progress.token is None:
            progress.token = token
        return progress
    return ProgressSink(callback=progress, token=token)
