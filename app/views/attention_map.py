"""Cross-attention map of one head for one prompt token, drawn over the image generated for that prompt."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLabel, QVBoxLayout

OVERLAY_OPACITY = 0.6


class AttentionMapView(QGroupBox):
    token_changed = Signal(int)
    prompt_changed = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__("Head attention map", parent)
        self.title = QLabel("Click a cross-attention head in the heatmap.")
        self.title.setWordWrap(True)
        self.token_combo = QComboBox()
        self.prompt_combo = QComboBox()
        self.graphics = pg.GraphicsLayoutWidget()
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.base_item = pg.ImageItem(axisOrder="row-major")
        self.map_item = pg.ImageItem(axisOrder="row-major")
        self.map_item.setOpacity(OVERLAY_OPACITY)
        self.map_item.setColorMap(pg.colormap.get("inferno"))
        self.view.addItem(self.base_item)
        self.view.addItem(self.map_item)
        self._maps: np.ndarray | None = None  # (tokens, h, w) for the current head
        prompt_row = QHBoxLayout()
        prompt_row.addWidget(QLabel("Prompt"))
        prompt_row.addWidget(self.prompt_combo, 1)
        row = QHBoxLayout()
        row.addWidget(QLabel("Token"))
        row.addWidget(self.token_combo, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(prompt_row)
        layout.addLayout(row)
        layout.addWidget(self.graphics, 1)
        self.token_combo.currentIndexChanged.connect(self._on_token_changed)
        self.prompt_combo.currentIndexChanged.connect(self.prompt_changed)

    def set_prompts(self, prompts: list[str]) -> None:
        self.prompt_combo.blockSignals(True)
        self.prompt_combo.clear()
        self.prompt_combo.addItems(prompts)
        self.prompt_combo.blockSignals(False)

    def current_prompt(self) -> int:
        return max(0, self.prompt_combo.currentIndex())

    def show_map(self, title: str, tokens: list[str], maps: np.ndarray, image=None, token: int | None = None) -> None:
        """`maps`: (tokens, h, w) attention probabilities of one head; `image`: RGB of the same prompt or None."""
        self._maps = maps
        self.title.setText(title)
        self.token_combo.blockSignals(True)
        self.token_combo.clear()
        self.token_combo.addItems([f"{i}: {t}" for i, t in enumerate(tokens[: maps.shape[0]])])
        if token is None:  # keep the token the user chose for the previous head, else the first word
            token = self.token_combo.property("chosen") or 1
        self.token_combo.setCurrentIndex(min(token, self.token_combo.count() - 1))
        self.token_combo.blockSignals(False)
        side = maps.shape[-1]
        if image is not None:
            rgb = np.asarray(image.convert("RGB")) if hasattr(image, "convert") else np.asarray(image)
            self.base_item.setImage(rgb)
            side = rgb.shape[1]
            self.base_item.setRect(0, 0, rgb.shape[1], rgb.shape[0])
            self.base_item.show()
        else:
            self.base_item.hide()
        self._extent = side
        self._draw_token(self.token_combo.currentIndex())

    def show_unavailable(self, reason: str) -> None:
        self._maps = None
        self.token_combo.clear()
        self.map_item.clear()
        self.base_item.hide()
        self.title.setText(reason)

    def current_token(self) -> int:
        return self.token_combo.currentIndex()

    def _draw_token(self, index: int) -> None:
        if self._maps is None or index < 0:
            return
        heat = self._maps[index]
        self.map_item.setImage(heat, levels=(0.0, max(float(heat.max()), 1e-6)))
        self.map_item.setRect(0, 0, self._extent, self._extent)
        self.view.autoRange(padding=0)

    def _on_token_changed(self, index: int) -> None:
        self.token_combo.setProperty("chosen", index)
        self._draw_token(index)
        self.token_changed.emit(index)
