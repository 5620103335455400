"""Live memory plot: follows core's MemorySampler during a job. One persistent curve per series (RSS on CPU;
allocated, reserved and NVML used on CUDA), fed by a QTimer that polls the new samples; the peak is marked."""

from __future__ import annotations

from collections import deque

import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

HISTORY = 20_000
MB = 2**20
COLOURS = ("#4fc3f7", "#ffb74d", "#81c784", "#e57373")
SERIES = (("cuda_allocated_bytes", "allocated"), ("cuda_reserved_bytes", "reserved"),
          ("nvml_used_bytes", "NVML used"), ("rss_bytes", "RSS"))


def sample_series(sample) -> dict:
    """The plotted values (MB) of one core.profiling.MemorySample: the device's first when it has them."""
    return {label: getattr(sample, field) / MB for field, label in SERIES if getattr(sample, field) is not None}


class MemoryPlot(QWidget):
    def __init__(self, interval_ms: int = 250, parent=None) -> None:
        super().__init__(parent)
        self.sampler = None
        self._seen = 0
        self.plot_widget = pg.PlotWidget()
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setLabel("left", "memory (MB)")
        self.plot.setLabel("bottom", "time in job (s)")
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).enableAutoSIPrefix(False)
        self.plot.setDownsampling(mode="peak")
        self.plot.setClipToView(True)
        self.plot.addLegend(offset=(-5, -5))  # bottom right: the peak label lives near the top
        self.plot.showGrid(y=True, alpha=0.2)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.series: dict[str, deque] = {}
        self.times: dict[str, deque] = {}
        self.peak_mark = pg.ScatterPlotItem(symbol="t", size=12, brush=pg.mkBrush("#ff5252"))
        self.peak_text = pg.TextItem(color="#ff8a80", anchor=(0.5, 1.2))
        self.plot.addItem(self.peak_mark)
        self.plot.addItem(self.peak_text)
        self.peak: tuple[float, float] | None = None  # (time s, MB) of the first series
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.poll)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)

    def follow(self, sampler, title: str = "") -> None:
        """Plots `sampler` (running) from now on, starting from an empty plot."""
        self.sampler, self._seen, self.peak = sampler, 0, None
        for name in self.series:
            self.series[name].clear()
            self.times[name].clear()
            self.curves[name].setData([], [])
        self.plot.setTitle(title or None)
        self.timer.start()

    def stop_following(self) -> None:
        self.poll()
        self.timer.stop()

    def poll(self) -> None:
        if self.sampler is None:
            return
        new = self.sampler.samples(since=self._seen)
        self._seen += len(new)
        for sample in new:
            self.add_sample(sample.t, sample_series(sample), redraw=False)
        if new:
            self._redraw()

    def add_sample(self, t: float, values: dict, redraw: bool = True) -> None:
        for name, value in values.items():
            if name not in self.curves:
                self._add_series(name)
            self.times[name].append(t)
            self.series[name].append(value)
        if redraw:
            self._redraw()

    def _redraw(self) -> None:
        for name, curve in self.curves.items():
            curve.setData(list(self.times[name]), list(self.series[name]), skipFiniteCheck=True)
        self._mark_peak()

    def _add_series(self, name: str) -> None:
        colour = COLOURS[len(self.curves) % len(COLOURS)]
        self.series[name], self.times[name] = deque(maxlen=HISTORY), deque(maxlen=HISTORY)
        self.curves[name] = self.plot.plot(name=name, pen=pg.mkPen(colour, width=2))

    def _mark_peak(self) -> None:
        first = next((name for name in self.series if self.series[name]), None)
        if first is None:
            return
        values, times = self.series[first], self.times[first]
        index = max(range(len(values)), key=values.__getitem__)
        self.peak = (times[index], values[index])
        self.peak_mark.setData([self.peak[0]], [self.peak[1]])
        self.peak_text.setText(f"peak {first} {self.peak[1]:.0f} MB")
        late = self.peak[0] > (times[0] + times[-1]) / 2
        self.peak_text.setAnchor((1.0, 1.2) if late else (0.0, 1.2))  # keep the label inside the plot
        self.peak_text.setPos(*self.peak)
