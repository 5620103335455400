"""Prompt panel: prompts (one a line), seeds (a list or a count), steps, guidance, size; Profile and Cancel."""

from __future__ import annotations

import re

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

DEFAULT_PROMPTS = "a red circle above a blue square\na green triangle on a yellow background"


class SeedsError(ValueError):
    pass


def parse_seeds(text: str, mode: str) -> list[int]:
    """'0, 1, 2' in list mode; '4' in count mode (seeds 0..3)."""
    text = text.strip()
    if mode == "count":
        if not text.isdigit() or int(text) < 1:
            raise SeedsError(f"Seed count must be a whole number of at least 1, got {text!r}.")
        return list(range(int(text)))
    parts = [p for p in re.split(r"[,\s]+", text) if p]
    if not parts or not all(p.isdigit() for p in parts):
        raise SeedsError(f"Seeds must be whole numbers separated by commas (e.g. 0, 1, 2), got {text!r}.")
    return [int(p) for p in parts]


class PromptPanel(QGroupBox):
    profile_requested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__("Prompts and profiling", parent)
        self.prompts_edit = QPlainTextEdit(DEFAULT_PROMPTS)
        self.prompts_edit.setPlaceholderText("One prompt a line")
        self.prompts_edit.setMaximumHeight(90)
        self.seed_mode = QComboBox()
        self.seed_mode.addItems(["list", "count"])
        self.seeds_edit = QLineEdit("0")
        self.steps_spin = _spin(1, 200, 4)
        self.guidance_spin = QDoubleSpinBox()
        self.guidance_spin.setRange(0.0, 30.0)
        self.guidance_spin.setSingleStep(0.5)
        self.guidance_spin.setValue(7.5)
        self.size_spin = _spin(64, 2048, 64, step=64)
        self.size_spin.setToolTip("Image side in pixels; the built-in model draws 64x64.")
        self.profile_button = QPushButton("Profile heads")
        self.profile_button.setEnabled(False)
        self.profile_button.clicked.connect(self.profile_requested)
        seeds_row = QHBoxLayout()
        seeds_row.addWidget(self.seed_mode)
        seeds_row.addWidget(self.seeds_edit, 1)
        form = QFormLayout()
        form.addRow("Seeds", seeds_row)
        form.addRow("Steps", self.steps_spin)
        form.addRow("Guidance", self.guidance_spin)
        form.addRow("Size", self.size_spin)
        layout = QVBoxLayout(self)
        layout.addWidget(self.prompts_edit)
        layout.addLayout(form)
        layout.addWidget(self.profile_button)

    def prompts(self) -> list[str]:
        return [line.strip() for line in self.prompts_edit.toPlainText().splitlines() if line.strip()]

    def seeds(self) -> list[int]:
        return parse_seeds(self.seeds_edit.text(), self.seed_mode.currentText())

    def request(self) -> dict:
        """The profiling request; raises ValueError with a message for the user when an input is wrong."""
        prompts = self.prompts()
        if not prompts:
            raise ValueError("Write at least one prompt (one a line) before profiling.")
        return {"prompts": prompts, "seeds": self.seeds(), "steps": self.steps_spin.value(),
                    "guidance": self.guidance_spin.value(), "size": self.size_spin.value()}

    def settings(self) -> dict:
        return {"prompt/prompts": self.prompts_edit.toPlainText(), "prompt/seed_mode": self.seed_mode.currentText(),
                "prompt/seeds": self.seeds_edit.text(), "prompt/steps": self.steps_spin.value(),
                "prompt/guidance": self.guidance_spin.value(), "prompt/size": self.size_spin.value()}

    def restore(self, settings) -> None:
        self.prompts_edit.setPlainText(settings.value("prompt/prompts", DEFAULT_PROMPTS))
        self.seed_mode.setCurrentText(settings.value("prompt/seed_mode", "list"))
        self.seeds_edit.setText(settings.value("prompt/seeds", "0"))
        self.steps_spin.setValue(settings.value("prompt/steps", 4, int))
        self.guidance_spin.setValue(settings.value("prompt/guidance", 7.5, float))
        self.size_spin.setValue(settings.value("prompt/size", 64, int))


def _spin(low: int, high: int, value: int, step: int = 1) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setValue(value)
    return spin
