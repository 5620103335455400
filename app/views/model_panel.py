"""Model panel: the built-in model, a checkpoint file or a diffusers folder (dialogs or drag-and-drop),
device and dtype; shows what was loaded (architecture, parameters, heads)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
)

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("fp32", "fp16", "bf16")
CHECKPOINT_FILTER = "Checkpoints (*.safetensors *.ckpt *.pt *.pth);;All files (*)"


class ModelPanel(QGroupBox):
    load_requested = Signal(str, str, str, bool)  # spec, device, dtype, allow pickle

    def __init__(self, parent=None) -> None:
        super().__init__("Model", parent)
        self.setAcceptDrops(True)
        self.spec_combo = QComboBox()
        self.spec_combo.setEditable(True)
        self.spec_combo.setToolTip("builtin:shapes, a .safetensors checkpoint, or a diffusers folder. "
                                   "You can also drop a file or folder here.")
        self.file_button = QPushButton("File…")
        self.folder_button = QPushButton("Folder…")
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.device_combo.setToolTip("auto = CUDA when present, else CPU")
        self.dtype_combo = QComboBox()
        self.dtype_combo.addItems(DTYPES)
        self.pickle_check = QCheckBox("Allow pickle files (.ckpt/.pt)")
        self.pickle_check.setToolTip("Pickle files can run code when opened. Only for checkpoints you trust; they "
                                     "are then read with torch.load(weights_only=True), tensors only.")
        self.load_button = QPushButton("Load model")
        self.summary = QLabel("No model loaded.")
        self.summary.setWordWrap(True)
        self._build_layout()
        self.file_button.clicked.connect(self._on_file_clicked)
        self.folder_button.clicked.connect(self._on_folder_clicked)
        self.load_button.clicked.connect(self._on_load_clicked)

    def _build_layout(self) -> None:
        source_row = QHBoxLayout()
        source_row.addWidget(self.spec_combo, 1)
        source_row.addWidget(self.file_button)
        source_row.addWidget(self.folder_button)
        form = QFormLayout()
        form.addRow("Device", self.device_combo)
        form.addRow("Precision", self.dtype_combo)
        layout = QVBoxLayout(self)
        layout.addLayout(source_row)
        layout.addLayout(form)
        layout.addWidget(self.pickle_check)
        layout.addWidget(self.load_button)
        layout.addWidget(self.summary)

    def set_recent(self, specs: list[str]) -> None:
        current = self.spec()
        self.spec_combo.clear()
        self.spec_combo.addItems(specs)
        self.set_spec(current or (specs[0] if specs else ""))

    def set_spec(self, spec: str) -> None:
        self.spec_combo.setCurrentText(spec)

    def spec(self) -> str:
        return self.spec_combo.currentText().strip()

    def set_choice(self, device: str, dtype: str) -> None:
        if device in DEVICES:
            self.device_combo.setCurrentText(device)
        if dtype in DTYPES:
            self.dtype_combo.setCurrentText(dtype)

    def set_busy(self, busy: bool) -> None:
        for widget in (self.load_button, self.file_button, self.folder_button, self.spec_combo):
            widget.setEnabled(not busy)

    def show_summary(self, summary: dict) -> None:
        lines = [f"<b>{summary['name']}</b> ({summary['family']}, {summary['source']})",
                 f"{summary['parameters'] / 1e6:.1f} M UNet parameters on {summary['device']} ({summary['dtype']})",
                 f"{summary['attention_modules']} attention modules, {summary['heads']} heads"]
        if summary.get("guidance_from_model"):
            lines.append(f"Guidance set to {summary['recommended_guidance']:g}, the value this model recommends")
        if summary.get("clip"):
            lines.append(f"CLIP scoring: {summary['clip']}")
        if summary.get("note"):
            lines.append(f"<i>{summary['note']}</i>")
        self.summary.setText("<br>".join(lines))

    def show_message(self, text: str) -> None:
        self.summary.setText(text)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.set_spec(urls[0].toLocalFile())
            event.acceptProposedAction()

    def _on_file_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a checkpoint", "", CHECKPOINT_FILTER)
        if path:
            self.set_spec(path)

    def _on_folder_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a diffusers model folder")
        if path:
            self.set_spec(path)

    def _on_load_clicked(self) -> None:
        self.load_requested.emit(self.spec(), self.device_combo.currentText(), self.dtype_combo.currentText(),
                                 self.pickle_check.isChecked())
