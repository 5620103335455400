"""Head heatmap: attention modules (rows) x heads (columns), coloured by a score, pruned heads crossed out.

Modules have different head counts; missing cells are NaN and draw transparent. The module axis scrolls and
zooms (wheel, drag) so SDXL's 140 modules stay readable; hovering a cell tells module, head, score and fate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import QLabel, QToolTip, QVBoxLayout, QWidget

VISIBLE_ROWS = 40
PRUNED_BRUSH = pg.mkBrush(255, 64, 64, 230)


@dataclass
class HeatmapData:
    names: list[str]
    kinds: list[str]  # "self" | "cross"
    values: list[list[float]]  # one list per module, one value per head (NaN where a score is unknown)
    label: str  # what the colour means, e.g. "energy"

    def matrix(self) -> np.ndarray:
        width = max((len(v) for v in self.values), default=0)
        grid = np.full((len(self.values), width), np.nan, dtype=np.float32)
        for row, heads in enumerate(self.values):
            grid[row, : len(heads)] = heads
        return grid


def short_name(name: str) -> str:
    """down_blocks.0.attentions.1.transformer_blocks.0.attn2 -> down0.a1.t0.attn2"""
    replaced = (name.replace("down_blocks.", "down").replace("up_blocks.", "up").replace("mid_block", "mid")
                .replace("attentions.", "a").replace("transformer_blocks.", "t"))
    return replaced


class HeadHeatmap(QWidget):
    head_clicked = Signal(str, int)  # module name, head index
    head_hovered = Signal(str)  # the tooltip text

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.data: HeatmapData | None = None
        self.method: str | None = None  # which score the colours show (set by the window)
        self.pruned: dict[str, set[int]] = {}
        self.graphics = pg.GraphicsLayoutWidget()
        self.plot = self.graphics.addPlot()
        self.plot.setLabel("bottom", "head")
        self.plot.invertY(True)
        self.plot.setMouseEnabled(x=False, y=True)
        self.plot.hideButtons()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.pruned_marks = pg.ScatterPlotItem(symbol="x", size=9, pen=pg.mkPen(None), brush=PRUNED_BRUSH)
        self.plot.addItem(self.pruned_marks)
        self.colorbar = pg.ColorBarItem(colorMap="viridis", interactive=False, width=14)
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        self.caption = QLabel("Profile the model to see its heads. Red × = pruned at the current threshold.")
        self.caption.setWordWrap(True)
        self.placeholder = QLabel("No heads to show yet.\n\nLoad a model, write a few prompts and press "
                                  "“Profile heads”:\nevery attention head will appear here, coloured by its score.")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setStyleSheet("QLabel { background: black; color: #9aa0a6; font-size: 14px; }")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.placeholder, 1)
        layout.addWidget(self.caption)
        self.graphics.hide()
        scene = self.graphics.scene()
        scene.sigMouseMoved.connect(self._on_mouse_moved)
        scene.sigMouseClicked.connect(self._on_mouse_clicked)

    def set_data(self, data: HeatmapData) -> None:
        self.data = data
        self.placeholder.hide()
        self.graphics.show()
        grid = data.matrix()
        finite = grid[np.isfinite(grid)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if high <= low:
            high = low + 1e-6
        self.image.setImage(grid, levels=(low, high))
        self.image.setRect(0, 0, grid.shape[1], grid.shape[0])
        self.colorbar.setLevels((low, high))
        self.colorbar.setLabel("left", data.label)  # the colour bar's axis
        self._set_axes(grid.shape)
        self._draw_pruned()
        self.caption.setText(f"{len(data.names)} attention modules × up to {grid.shape[1]} heads, coloured by "
                             f"{data.label}. Red × = pruned. Wheel/drag to scroll modules, click a head for its map.")

    def clear(self) -> None:
        self.data, self.method, self.pruned = None, None, {}
        self.image.clear()
        self.pruned_marks.setData(x=[], y=[])
        self.graphics.hide()
        self.placeholder.show()
        self.caption.setText("Profile the model to see its heads. Red × = pruned at the current threshold.")

    def set_pruned(self, pruned: dict[str, list[int] | set[int]]) -> None:
        self.pruned = {name: set(heads) for name, heads in pruned.items()}
        self._draw_pruned()

    def pruned_count(self) -> int:
        return len(self.pruned_marks.data)

    def cell_at(self, x: float, y: float) -> tuple[str, int] | None:
        if self.data is None:
            return None
        row, col = int(np.floor(y)), int(np.floor(x))
        if not (0 <= row < len(self.data.names)) or not (0 <= col < len(self.data.values[row])):
            return None
        return self.data.names[row], col

    def describe(self, name: str, head: int) -> str:
        row = self.data.names.index(name)
        score = self.data.values[row][head]
        fate = "pruned" if head in self.pruned.get(name, ()) else "kept"
        return f"{name} ({self.data.kinds[row]}-attention)\nhead {head}\n{self.data.label}: {score:.4g}\n{fate}"

    def _set_axes(self, shape) -> None:
        rows, cols = shape
        left = self.plot.getAxis("left")
        labels = [(r + 0.5, f"{short_name(n)}") for r, n in enumerate(self.data.names)]
        step = max(1, rows // 12)
        left.setTicks([labels[::step], labels])
        self.plot.getAxis("bottom").setTicks([[(c + 0.5, str(c)) for c in range(cols)]])
        self.plot.setLimits(xMin=0, xMax=max(cols, 1), yMin=0, yMax=max(rows, 1), minYRange=3)
        self.plot.setXRange(0, max(cols, 1), padding=0)
        self.plot.setYRange(0, min(rows, VISIBLE_ROWS), padding=0)

    def _draw_pruned(self) -> None:
        if self.data is None:
            return
        spots = [(head + 0.5, row + 0.5) for row, name in enumerate(self.data.names)
                 for head in sorted(self.pruned.get(name, ())) if head < len(self.data.values[row])]
        xs, ys = (np.array([s[0] for s in spots]), np.array([s[1] for s in spots])) if spots else ([], [])
        self.pruned_marks.setData(x=xs, y=ys)

    def _view_point(self, scene_pos) -> QPointF | None:
        if not self.plot.sceneBoundingRect().contains(scene_pos):
            return None
        return self.plot.vb.mapSceneToView(scene_pos)

    def _on_mouse_moved(self, scene_pos) -> None:
        point = self._view_point(scene_pos)
        cell = self.cell_at(point.x(), point.y()) if point is not None else None
        if cell is None:
            self.graphics.setToolTip("")
            return
        text = self.describe(*cell)
        self.graphics.setToolTip(text)
        QToolTip.showText(self.graphics.mapToGlobal(self.graphics.mapFromScene(scene_pos)), text, self.graphics)
        self.head_hovered.emit(text)

    def _on_mouse_clicked(self, event) -> None:
        point = self._view_point(event.scenePos())
        cell = self.cell_at(point.x(), point.y()) if point is not None else None
        if cell is not None:
            self.head_clicked.emit(*cell)
