"""`CoreWorker`: runs one core function in a QThread and turns its progress into Qt signals.

Signal order for one run: `started` (QThread), any number of `progress_changed`, then exactly one of
`result_ready` / `failed` / `cancelled`, then `finished` (QThread). Every progress report of the core
function is also a cancel point: `cancel()` sets the token and the next report raises CancelledError.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QThread, Signal

from core.errors import CancelledError, HeadRoomError
from core.progress import CancelToken, ProgressEvent, ProgressSink

log = logging.getLogger(__name__)

MIN_PROGRESS_INTERVAL_S = 0.05


class CoreWorker(QThread):
    progress_changed = Signal(object)  # core.progress.ProgressEvent
    result_ready = Signal(object)
    failed = Signal(str)  # a message meant for the user
    cancelled = Signal()

    def __init__(self, fn: Callable[..., Any], *args: Any, name: str = "", parent=None, **kwargs: Any) -> None:
        super().__init__(parent)
        self.name = name or getattr(fn, "__name__", "job")
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self.token = CancelToken()
        self._last_emit = 0.0
        self.done = False  # set when run() has nothing left to do; the thread ends right after
        self.outcome = ""  # "done" | "failed" | "cancelled", set before the matching signal is emitted
        self.setObjectName(f"CoreWorker[{self.name}]")

    def cancel(self) -> None:
        self.token.cancel()

    def run(self) -> None:
        import threading

        threading.current_thread().name = f"worker:{self.name}"  # the log file says which job wrote a line
        try:
            self._run()
        finally:
            self.done = True

    def _run(self) -> None:
        sink = ProgressSink(callback=self._on_progress, token=self.token)
        kwargs = dict(self._kwargs, progress=sink)
        if _accepts(self._fn, "token"):
            kwargs["token"] = self.token
        try:
            self.token.raise_if_cancelled()
            result = self._fn(*self._args, **kwargs)
        except CancelledError:
            log.info("%s cancelled", self.name)
            self.outcome = "cancelled"
            self.cancelled.emit()
        except HeadRoomError as exc:
            log.warning("%s failed: %s", self.name, exc)
            self.outcome = "failed"
            self.failed.emit(str(exc))
        except Exception as exc:  # an unexpected error still reaches the user, with the log for details
            log.exception("%s crashed", self.name)
            self.outcome = "failed"
            self.failed.emit(f"{self.name} stopped with an unexpected error: {type(exc).__name__}: {exc}")
        else:
            self.outcome = "cancelled" if self.token.cancelled else "done"
            if self.token.cancelled:
                self.cancelled.emit()
            else:
                self.result_ready.emit(result)

    def _on_progress(self, event: ProgressEvent) -> None:
        now = time.perf_counter()
        last = event.total > 0 and event.done >= event.total
        if event.payload is None and not last and now - self._last_emit < MIN_PROGRESS_INTERVAL_S:
            return
        self._last_emit = now
        self.progress_changed.emit(event)


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
