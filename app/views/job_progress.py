"""`JobProgress`: progress bar with step counts and ETA, and a Cancel button, for whichever job runs now."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget


def format_eta(seconds) -> str:
    if seconds is None:
        return ""
    seconds = round(seconds)
    return f"ETA {seconds // 60}:{seconds % 60:02d}"


class JobProgress(QWidget):
    cancel_requested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.label = QLabel("Idle")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        row = QHBoxLayout()
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.label)

    def set_running(self, job_name: str) -> None:
        self._job = job_name
        self.bar.setRange(0, 0)  # busy until the first report says how much there is
        self.label.setText(f"{job_name}: starting…")
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")

    def set_progress(self, event) -> None:
        if event.total > 0:
            self.bar.setRange(0, event.total)
            self.bar.setValue(min(event.done, event.total))
            counts = f"{event.done}/{event.total}"
        else:
            counts = f"{event.done}"
        parts = [p for p in (event.message, counts, format_eta(event.eta_s)) if p]
        self.label.setText(f"{getattr(self, '_job', 'Job')}: " + " · ".join(parts))

    def set_idle(self, message: str) -> None:
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if message.endswith("done") else 0)
        self.label.setText(message)
        self.cancel_button.setEnabled(False)

    def _on_cancel_clicked(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")
        self.cancel_requested.emit()
