"""The workers a window owns: started through here, cancelled and awaited together when the window closes."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal

from app.workers.core_worker import CoreWorker

log = logging.getLogger(__name__)


class WorkerSet(QObject):
    worker_finished = Signal(object)  # the worker, awaited and forgotten: is_busy() is up to date

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._workers: list[CoreWorker] = []

    def start(self, worker: CoreWorker) -> CoreWorker:
        self._workers.append(worker)
        worker.finished.connect(self._on_worker_finished)  # a bound method: runs in the GUI thread
        worker.start()
        return worker

    def running(self) -> list[CoreWorker]:
        return [w for w in self._workers if not w.done]

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
        self._on_worker_finished()
        return stopped

    def _on_worker_finished(self) -> None:
        # run() is over for these; the thread is only unwinding, so the wait is short (bounded all the same)
        ended = [w for w in self._workers if w.done and w.wait(10000)]
        for worker in ended:
            self._workers.remove(worker)
            worker.deleteLater()
        for worker in ended:
            self.worker_finished.emit(worker)
