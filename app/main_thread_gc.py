"""Python's cyclic garbage collector, run only in the GUI thread.

Automatic collection runs in whichever thread happens to allocate. If a worker thread (loading a model,
say) triggers it and the garbage holds Qt widgets, their destructors run in the wrong thread and can
deadlock against the GUI thread (seen here: a worker collecting an old window's QMenu while the GUI
thread deleted its children). pyqtgraph's GarbageCollector does the same for the same reason.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


class MainThreadGarbageCollector(QObject):
    def __init__(self, interval_ms: int = 1000, parent=None) -> None:
        super().__init__(parent)
        self._was_enabled = gc.isenabled()
        self._threshold = gc.get_threshold()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.collect_if_due)
        self._timer.start(interval_ms)

    def collect_if_due(self) -> None:
        count0, count1, count2 = gc.get_count()
        if count0 > self._threshold[0]:
            gc.collect(0)
            if count1 > self._threshold[1]:
                gc.collect(1)
                if count2 > self._threshold[2]:
                    gc.collect(2)

    def stop(self) -> None:
        """Collects once more here, then gives collection back to Python (call when no worker runs)."""
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()
