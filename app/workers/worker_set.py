"""The workers a window owns: started through here, cancelled and awaited together when the window closes."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject

from app.workers.core_worker import CoreWorker

log = logging.getLogger(__name__)


class WorkerSet(QObject):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._workers: list[CoreWorker] = []

    def start(self, worker: CoreWorker) -> CoreWorker:
        self._workers.append(worker)
        worker.finished.connect(lambda w=worker: self._forget(w))
        worker.start()
        return worker

    def running(self) -> list[CoreWorker]:
        return [w for w in self._workers if w.isRunning()]

    def is_busy(self) -> bool:
        return bool(self.running())

    def cancel_all(self) -> None:
        for worker in list(self._workers):
            worker.cancel()

    def shutdown(self, msecs: int = 30000) -> bool:
        """Cancels every worker and waits for each; True when all stopped in time."""
        self.cancel_all()
        stopped = True
        for worker in list(self._workers):
            if not worker.wait(msecs):
                log.error("%s did not stop within %d ms", worker.name, msecs)
                stopped = False
        self._workers = [w for w in self._workers if w.isRunning()]
        return stopped

    def _forget(self, worker: CoreWorker) -> None:
        if worker in self._workers:
            self._workers.remove(worker)
        worker.deleteLater()
