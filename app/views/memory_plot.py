"""Live memory plot: one persistent curve per series (RSS on CPU; allocated/reserved/NVML on CUDA), fed by a
QTimer that polls a memory source, with the peak of the first series marked."""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

HISTORY = 3000
COLOURS = ("#4fc3f7", "#ffb74d", "#81c784", "#e57373")


class MemoryPlot(QWidget):
    def __init__(self, source: "Callable[[], dict[str, float]] | None" = None, interval_ms: int = 250,
                 parent=None) -> None:
        super().__init__(parent)
        self.source = source
        self.plot_widget = pg.PlotWidget()
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setLabel("left", "memory (MB)")
        self.plot.setLabel("bottom", "time", units="s")
        self.plot.setDownsampling(mode="peak")
        self.plot.setClipToView(True)
        self.plot.addLegend(offset=(5, 5))
        self.plot.showGrid(y=True, alpha=0.2)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.series: dict[str, deque] = {}
        self.times: deque = deque(maxlen=HISTORY)
        self.peak_mark = pg.ScatterPlotItem(symbol="t", size=12, brush=pg.mkBrush("#ff5252"))
        self.peak_text = pg.TextItem(color="#ff8a80", anchor=(0.5, 1.2))
        self.plot.addItem(self.peak_mark)
        self.plot.addItem(self.peak_text)
        self.peak: tuple[float, float] | None = None  # (time s, MB) of the first series
        self._t0 = time.perf_counter()
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.poll)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)

    def start(self) -> None:
        if self.source is not None and not self.timer.isActive():
            self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def poll(self) -> None:
        if self.source is None:
            return
        self.add_sample(time.perf_counter() - self._t0, self.source())

    def add_sample(self, t: float, values: "dict[str, float]") -> None:
        self.times.append(t)
        for name, value in values.items():
            if name not in self.curves:
                self._add_series(name)
            self.series[name].append(value)
        for name, curve in self.curves.items():
            curve.setData(list(self.times)[-len(self.series[name]):], list(self.series[name]), skipFiniteCheck=True)
        self._mark_peak()

    def _add_series(self, name: str) -> None:
        colour = COLOURS[len(self.curves) % len(COLOURS)]
        self.series[name] = deque(maxlen=HISTORY)
        self.curves[name] = self.plot.plot(name=name, pen=pg.mkPen(colour, width=2))

    def _mark_peak(self) -> None:
        first = next(iter(self.series), None)
        if first is None or not self.series[first]:
            return
        values = list(self.series[first])
        times = list(self.times)[-len(values):]
        index = max(range(len(values)), key=values.__getitem__)
        self.peak = (times[index], values[index])
        self.peak_mark.setData([self.peak[0]], [self.peak[1]])
        self.peak_text.setText(f"peak {self.peak[1]:.0f} MB")
        self.peak_text.setPos(*self.peak)
