"""Threshold panel: slider + spin box (prune percentile or keep ratio), score, per-module minimum, reductions,
and readouts of the live estimate (heads kept, parameters and MB removed, memory saved)."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QVBoxLayout,
)

SCORES = {"activation energy": "activation_energy_rank", "token mass": "token_mass",
          "taylor (runs the model)": "taylor", "ablation (runs the model)": "ablation"}
MODEL_RUN_SCORES = ("taylor", "ablation")  # computed by a background job, not read from the profile
MODES = {"prune lowest %": "percentile", "keep %": "retention"}
SLIDER_STEPS = 1000  # 0.1 % resolution


class ThresholdPanel(QGroupBox):
    config_changed = Signal(dict)

    def __init__(self, parent=None) -> None:
        super().__init__("Threshold", parent)
        self.score_combo = QComboBox()
        self.score_combo.addItems(list(SCORES))
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(list(MODES))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.spin = QDoubleSpinBox()
        self.spin.setRange(0.0, 100.0)
        self.spin.setDecimals(1)
        self.spin.setSuffix(" %")
        self.min_heads_spin = QSpinBox()
        self.min_heads_spin.setRange(0, 64)
        self.min_heads_spin.setValue(1)
        self.min_heads_spin.setToolTip("Each attention module keeps at least this many heads.")
        self.toggles = {key: QCheckBox(text) for key, text in
                        (("heads", "attention heads"), ("ffn", "FFN neurons"), ("low_rank", "low-rank"),
                         ("precision", "lower precision"), ("heal", "heal when saving (steps)"))}
        self.toggles["heads"].setChecked(True)
        self.toggles["heads"].setEnabled(False)  # head pruning is what the slider sets; the others add to it
        self.ffn_spin = _percent_spin(25.0, "Share of each FFN's hidden neurons removed (lowest activation).")
        self.low_rank_spin = _percent_spin(95.0, "Energy each low-rank factorised layer keeps.")
        self.precision_combo = QComboBox()
        self.precision_combo.addItems(["fp16", "bf16", "int8"])
        self.heal_spin = QSpinBox()
        self.heal_spin.setRange(10, 5000)
        self.heal_spin.setSingleStep(50)
        self.heal_spin.setValue(300)
        self.toggles["heal"].setToolTip(
            "When saving, train the fragment for a few hundred steps to predict what the base predicts on your "
            "profiled prompts (a short distillation). It brings the saved fragment's images back towards the base; "
            "the quick preview does not include it. Needs about 16 bytes of memory per UNet parameter "
            "(SD 1.5 about 14 GB); untick it on a smaller GPU.")
        self.toggle_params = {"ffn": self.ffn_spin, "low_rank": self.low_rank_spin, "precision": self.precision_combo,
                              "heal": self.heal_spin}
        for key, widget in self.toggle_params.items():
            widget.setEnabled(False)
            self.toggles[key].toggled.connect(widget.setEnabled)
        self.toggles["heal"].setChecked(True)
        self.readouts = {key: QLabel("–") for key in ("heads", "params", "mb", "memory")}
        self._build_layout()
        self.set_value(30.0)
        self.slider.valueChanged.connect(self._on_slider_moved)
        self.spin.valueChanged.connect(self._on_spin_changed)
        for widget in (self.score_combo, self.mode_combo):
            widget.currentIndexChanged.connect(self._emit)
        self.min_heads_spin.valueChanged.connect(self._emit)
        for box in self.toggles.values():
            box.toggled.connect(self._emit)
        self.ffn_spin.valueChanged.connect(self._emit)
        self.low_rank_spin.valueChanged.connect(self._emit)
        self.precision_combo.currentIndexChanged.connect(self._emit)
        self.heal_spin.valueChanged.connect(self._emit)

    def _build_layout(self) -> None:
        form = QFormLayout()
        form.addRow("Score", self.score_combo)
        form.addRow("Threshold", self.mode_combo)
        value_row = QHBoxLayout()
        value_row.addWidget(self.slider, 1)
        value_row.addWidget(self.spin)
        form.addRow(value_row)
        form.addRow("Min heads / module", self.min_heads_spin)
        self.min_heads_spin.setToolTip("Each attention module keeps at least this many heads (0 lets a module "
                                       "be dropped as a whole).")
        toggles = QGridLayout()
        toggles.addWidget(self.toggles["heads"], 0, 0)
        for row, key in enumerate(("ffn", "low_rank", "precision", "heal"), start=1):
            toggles.addWidget(self.toggles[key], row, 0)
            toggles.addWidget(self.toggle_params[key], row, 1)
        readouts = QFormLayout()
        for key, text in (("heads", "Heads kept"), ("params", "Parameters removed"), ("mb", "Weights removed"),
                          ("memory", "Memory saved (est.)")):
            readouts.addRow(text, self.readouts[key])
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Reduce:"))
        layout.addLayout(toggles)
        layout.addLayout(readouts)

    def value(self) -> float:
        return self.spin.value()

    def set_value(self, percent: float) -> None:
        with QSignalBlocker(self.slider), QSignalBlocker(self.spin):
            self.spin.setValue(percent)
            self.slider.setValue(round(percent / 100.0 * SLIDER_STEPS))
        self._emit()

    def set_available_scores(self, available: list[str]) -> None:
        for index, method in enumerate(SCORES.values()):
            item = self.score_combo.model().item(index)
            item.setEnabled(method in available)

    def config(self) -> dict:
        return {"method": SCORES[self.score_combo.currentText()], "mode": MODES[self.mode_combo.currentText()],
                "value": self.value() / 100.0, "min_heads_per_module": self.min_heads_spin.value(),
                **{key: box.isChecked() for key, box in self.toggles.items()},
                "ffn_ratio": self.ffn_spin.value() / 100.0, "low_rank_energy": self.low_rank_spin.value() / 100.0,
                "precision_dtype": self.precision_combo.currentText(), "heal_steps": self.heal_spin.value()}

    def show_estimate(self, readout: dict) -> None:
        self.readouts["heads"].setText(f"{readout['heads_kept']} / {readout['heads_total']}")
        self.readouts["params"].setText(f"{readout['params_removed'] / 1e6:.2f} M")
        self.readouts["mb"].setText(f"{readout['bytes_removed'] / 2**20:.1f} MB")
        # Core estimates weights only; activation savings are measured when the fragment is saved.
        self.readouts["memory"].setText(f"≥ {readout['bytes_removed'] / 2**20:.1f} MB")
        self.readouts["memory"].setToolTip("At least the removed weights stay out of memory. The saving in "
                                           "activations is measured (peak memory) when you save the fragment.")

    def clear_estimate(self, text: str = "–") -> None:
        for label in self.readouts.values():
            label.setText(text)

    def _on_slider_moved(self, position: int) -> None:
        with QSignalBlocker(self.spin):
            self.spin.setValue(position * 100.0 / SLIDER_STEPS)
        self._emit()

    def _on_spin_changed(self, percent: float) -> None:
        with QSignalBlocker(self.slider):
            self.slider.setValue(round(percent / 100.0 * SLIDER_STEPS))
        self._emit()

    def _emit(self, *_) -> None:
        self.config_changed.emit(self.config())


def _percent_spin(value: float, tip: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(0.0, 99.0)
    spin.setDecimals(0)
    spin.setSuffix(" %")
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin
