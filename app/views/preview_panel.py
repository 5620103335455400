"""Preview: base and fragment for the same prompt and seed, side by side with their difference, and the
quality/latency numbers core measured (SSIM, CLIP delta, pHash distance, latency of each)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from app.views.image_label import ImageLabel

METRICS = (("ssim", "SSIM", "{:.3f}"), ("clip_delta", "CLIP delta", "{:+.4f}"), ("phash_distance", "pHash distance",
           "{:d}"), ("base_latency_s", "Base latency", "{:.2f} s"), ("fragment_latency_s", "Fragment latency",
           "{:.2f} s"))


class PreviewPanel(QGroupBox):
    preview_requested = Signal(str, int)  # prompt, seed
    save_requested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__("Preview: base vs fragment", parent)
        self.prompt_combo = QComboBox()
        self.prompt_combo.setEditable(True)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.preview_button = QPushButton("Preview")
        self.save_button = QPushButton("Save fragment")
        for button in (self.preview_button, self.save_button):
            button.setEnabled(False)
        self.base_image = ImageLabel("base")
        self.fragment_image = ImageLabel("fragment")
        self.diff_image = ImageLabel("difference")
        self.metric_labels = {key: QLabel("–") for key, _, _ in METRICS}
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self._build_layout()
        self.preview_button.clicked.connect(self._on_preview_clicked)
        self.save_button.clicked.connect(self.save_requested)

    def _build_layout(self) -> None:
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Prompt"))
        controls.addWidget(self.prompt_combo, 1)
        controls.addWidget(QLabel("Seed"))
        controls.addWidget(self.seed_spin)
        controls.addWidget(self.preview_button)
        controls.addWidget(self.save_button)
        images = QGridLayout()
        for column, (title, label) in enumerate((("Base", self.base_image), ("Fragment", self.fragment_image),
                                                 ("|Difference| ×4", self.diff_image))):
            images.addWidget(QLabel(title), 0, column)
            images.addWidget(label, 1, column)
        metrics = QFormLayout()
        for key, text, _ in METRICS:
            metrics.addRow(text, self.metric_labels[key])
        row = QHBoxLayout()
        row.addLayout(images, 3)
        row.addLayout(metrics, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addLayout(row, 1)
        layout.addWidget(self.note)

    def set_prompts(self, prompts: list[str], seed: int = 0) -> None:
        self.prompt_combo.clear()
        self.prompt_combo.addItems(prompts)
        self.seed_spin.setValue(seed)

    def show_result(self, result: dict) -> None:
        self.base_image.set_image(result["base_image"])
        self.fragment_image.set_image(result["fragment_image"])
        if result.get("difference_image") is not None:
            self.diff_image.set_image(result["difference_image"])
        for key, _, fmt in METRICS:
            value = result.get(key)
            self.metric_labels[key].setText("unavailable" if value is None else fmt.format(value))
        self.metric_labels["clip_delta"].setToolTip(
            "CLIP score of the base minus the fragment's for this prompt: positive = the fragment agrees less "
            f"with the prompt. {result.get('clip_reason', '')}")
        self.note.setText(result.get("note", ""))

    def clear(self) -> None:
        for label in (self.base_image, self.fragment_image, self.diff_image):
            label.clear_image()
        for label in self.metric_labels.values():
            label.setText("–")
        self.prompt_combo.clear()
        self.note.setText("")

    def _on_preview_clicked(self) -> None:
        self.preview_requested.emit(self.prompt_combo.currentText().strip(), self.seed_spin.value())
