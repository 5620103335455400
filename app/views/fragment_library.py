"""Fragment library: the fragments saved in a folder, newest first, to reopen and compare."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

MANIFEST_NAME = "manifest.json"
COLUMNS = ("fragment", "base model", "heads kept", "SSIM", "saved")


def read_summary(folder: Path) -> dict | None:
    """What the library lists about one fragment, from its manifest; None when there is no readable manifest."""
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    base = manifest.get("base_model", {})
    pruning = manifest.get("pruning", {})
    quality = manifest.get("quality_eval", {}) or {}
    ratio = pruning.get("head_retention_ratio")
    ssim = quality.get("ssim_mean")
    created = manifest.get("created_at")
    if isinstance(created, (int, float)):
        import time

        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(created))
    return {"name": folder.name, "base": base.get("name", "?"),
            "kept": "?" if ratio is None else f"{ratio:.0%}", "ssim": "–" if ssim is None else f"{ssim:.3f}",
            "saved": str(created or "")}


class FragmentLibrary(QGroupBox):
    open_requested = Signal(str)  # fragment folder

    def __init__(self, folder: str | Path, parent=None) -> None:
        super().__init__("Fragment library", parent)
        self.folder = Path(folder)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.location = QLabel(f"Saved in {self.folder}")
        self.location.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.location.setWordWrap(True)
        self.refresh_button = QPushButton("Refresh")
        self.open_button = QPushButton("Open / compare")
        self.open_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.location)
        self.refresh_button.clicked.connect(self.refresh)
        self.open_button.clicked.connect(self._on_open_clicked)
        self.tree.itemDoubleClicked.connect(self._on_open_clicked)
        self.tree.itemSelectionChanged.connect(
            lambda: self.open_button.setEnabled(bool(self.tree.selectedItems())))
        self.refresh()

    def refresh(self) -> None:
        self.tree.clear()
        folders = sorted((p for p in self.folder.glob("*") if p.is_dir()), key=lambda p: p.stat().st_mtime,
                         reverse=True) if self.folder.is_dir() else []
        for path in folders:
            summary = read_summary(path)
            if summary is None:
                continue
            item = QTreeWidgetItem([summary["name"], summary["base"], summary["kept"], summary["ssim"],
                                    summary["saved"]])
            item.setData(0, Qt.ItemDataRole.UserRole, str(path))
            self.tree.addTopLevelItem(item)

    def count(self) -> int:
        return self.tree.topLevelItemCount()

    def _on_open_clicked(self, *_) -> None:
        items = self.tree.selectedItems()
        if items:
            self.open_requested.emit(items[0].data(0, Qt.ItemDataRole.UserRole))
