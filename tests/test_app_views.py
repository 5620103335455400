"""Each view on its own, with real inputs and no model: heatmap, threshold panel, memory plot, settings,
fragment library, prompt parsing, model panel."""

from __future__ import annotations

import json
import math
import os
import time

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl

from app.settings import BUILTIN_SPEC, MAX_RECENT, StudioSettings
from app.views.fragment_library import FragmentLibrary
from app.views.head_heatmap import VISIBLE_ROWS, HeadHeatmap, HeatmapData, short_name
from app.views.memory_plot import MemoryPlot
from app.views.model_panel import ModelPanel
from app.views.prompt_panel import SeedsError, parse_seeds
from app.views.threshold_panel import ThresholdPanel


def ragged_data(modules=3, max_heads=4):
    names = [f"down_blocks.{i}.attentions.0.transformer_blocks.0.attn{1 + i % 2}" for i in range(modules)]
    values = [[float(i * 10 + h) for h in range(max_heads - i % 2)] for i in range(modules)]
    return HeatmapData(names, ["self" if i % 2 == 0 else "cross" for i in range(modules)], values, "energy")


def scene_pos(heatmap, x, y):
    return heatmap.plot.vb.mapViewToScene(QPointF(x, y))


def test_heatmap_pads_ragged_modules_and_marks_pruned_heads(qtbot):
    heatmap = HeadHeatmap()
    qtbot.addWidget(heatmap)
    data = ragged_data()
    heatmap.set_data(data)
    grid = data.matrix()
    assert grid.shape == (3, 4)
    assert math.isnan(grid[1, 3]) and grid[1, 2] == 12.0  # module 1 has 3 heads: the 4th cell is empty
    assert heatmap.cell_at(3.5, 1.5) is None and heatmap.cell_at(2.5, 1.5) == (data.names[1], 2)
    heatmap.set_pruned({data.names[0]: [0, 2], data.names[1]: [1]})
    assert heatmap.pruned_count() == 3
    assert heatmap.describe(data.names[0], 2) == f"{data.names[0]} (self-attention)\nhead 2\nenergy: 2\npruned"
    assert heatmap.describe(data.names[1], 0).endswith("kept")
    heatmap.set_pruned({})
    assert heatmap.pruned_count() == 0
    assert short_name(data.names[1]) == "down1.a0.t0.attn2"


def test_heatmap_hover_and_click_name_the_head_under_the_mouse(qtbot):
    heatmap = HeadHeatmap()
    qtbot.addWidget(heatmap)
    heatmap.resize(600, 400)
    heatmap.show()
    data = ragged_data()
    heatmap.set_data(data)
    heatmap.set_pruned({data.names[2]: [1]})
    qtbot.waitExposed(heatmap)
    with qtbot.waitSignal(heatmap.head_hovered) as hovered:
        heatmap.graphics.scene().sigMouseMoved.emit(scene_pos(heatmap, 1.5, 2.5))
    assert hovered.args[0] == heatmap.describe(data.names[2], 1) and hovered.args[0].endswith("pruned")
    view_pos = heatmap.graphics.mapFromScene(scene_pos(heatmap, 2.5, 0.5))
    with qtbot.waitSignal(heatmap.head_clicked) as clicked:
        qtbot.mouseClick(heatmap.graphics.viewport(), Qt.MouseButton.LeftButton, pos=view_pos)
    assert clicked.args == [data.names[0], 2]


def test_heatmap_of_sdxl_size_scrolls_through_140_modules(qtbot):
    heatmap = HeadHeatmap()
    qtbot.addWidget(heatmap)
    names = [f"m{i}.attn{1 + i % 2}" for i in range(140)]
    values = [[float((i * 7 + h) % 13) for h in range(10 if i < 40 else 20)] for i in range(140)]
    heatmap.set_data(HeatmapData(names, ["self", "cross"] * 70, values, "token mass"))
    assert heatmap.image.image.shape == (140, 20)
    (_, _), (top, bottom) = heatmap.plot.vb.viewRange()
    assert bottom - top == pytest.approx(VISIBLE_ROWS)  # readable rows first; the rest is a scroll away
    heatmap.plot.vb.translateBy(y=100)
    (_, _), (top, bottom) = heatmap.plot.vb.viewRange()
    assert bottom == pytest.approx(140) and top == pytest.approx(100)  # limited to the data: no empty space


def test_threshold_slider_and_spin_box_follow_each_other(qtbot):
    panel = ThresholdPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.config_changed) as changed:
        panel.slider.setValue(455)
    assert panel.spin.value() == pytest.approx(45.5)
    assert changed.args[0]["value"] == pytest.approx(0.455) and changed.args[0]["mode"] == "percentile"
    with qtbot.waitSignal(panel.config_changed) as changed:
        panel.spin.setValue(12.0)
    assert panel.slider.value() == 120
    assert changed.args[0]["method"] == "activation_energy_rank"
    assert not panel.ffn_spin.isEnabled()
    panel.toggles["ffn"].setChecked(True)
    assert panel.ffn_spin.isEnabled() and panel.config()["ffn"] and panel.config()["ffn_ratio"] == 0.25
    assert panel.config()["heal"] and panel.config()["heal_steps"] == 300  # healing is on unless unticked
    panel.toggles["heal"].setChecked(False)
    assert not panel.heal_spin.isEnabled() and not panel.config()["heal"]
    panel.show_estimate({"heads_kept": 48, "heads_total": 80, "params_removed": 110_000,
                         "bytes_removed": 3 * 2**20})
    assert panel.readouts["heads"].text() == "48 / 80"
    assert panel.readouts["params"].text() == "0.11 M" and panel.readouts["mb"].text() == "3.0 MB"
    assert panel.readouts["memory"].text() == "≥ 3.0 MB"


def test_memory_plot_keeps_one_curve_per_series_and_marks_the_peak(qtbot):
    plot = MemoryPlot()
    qtbot.addWidget(plot)
    for t, mb in enumerate([100.0, 250.0, 180.0, 120.0]):
        plot.add_sample(float(t), {"allocated": mb, "reserved": mb + 50})
    curve = plot.curves["allocated"]
    plot.add_sample(4.0, {"allocated": 90.0, "reserved": 140.0})
    assert plot.curves["allocated"] is curve and len(plot.curves) == 2
    xs, ys = curve.getData()
    assert list(ys) == [100.0, 250.0, 180.0, 120.0, 90.0] and list(xs) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert plot.peak == (1.0, 250.0) and plot.peak_text.toPlainText() == "peak allocated 250 MB"


def test_memory_plot_follows_cores_memory_sampler(qtbot):
    from core.profiling.memory import MemorySampler

    plot = MemoryPlot(interval_ms=20)
    qtbot.addWidget(plot)
    plot.add_sample(0.0, {"RSS": 99999.0})  # an earlier job's curve is cleared when a new job starts
    curve = plot.curves["RSS"]
    sampler = MemorySampler(interval_s=0.02).start()
    try:
        plot.follow(sampler, "Profile")
        qtbot.waitUntil(lambda: len(plot.series["RSS"]) >= 5, timeout=5000)
    finally:
        sampler.stop()
    plot.stop_following()
    rss = list(plot.series["RSS"])
    assert plot.curves["RSS"] is curve and len(rss) == len(sampler)  # every sample, once
    assert all(10 < value < 99999 for value in rss)  # this process's resident memory, in MB
    assert plot.peak[1] == max(rss) and not plot.timer.isActive()


def test_settings_remember_recent_models(tmp_path):
    path = tmp_path / "settings.ini"
    settings = StudioSettings(path)
    assert settings.recent_models() == [BUILTIN_SPEC]
    for i in range(MAX_RECENT + 3):
        settings.add_recent_model(f"/models/m{i}.safetensors")
    settings.add_recent_model("/models/m5.safetensors")
    reopened = StudioSettings(path)
    recent = reopened.recent_models()
    assert recent[0] == BUILTIN_SPEC and recent[1] == "/models/m5.safetensors"
    assert len(recent) == MAX_RECENT + 1 and len(set(recent)) == len(recent)


def write_manifest(folder, name, retention, ssim, created):
    (folder / name).mkdir(parents=True)
    manifest = {"base_model": {"name": "builtin:shapes"}, "pruning": {"head_retention_ratio": retention},
                "quality_eval": {"ssim_mean": ssim}, "created_at": created}
    (folder / name / "manifest.json").write_text(json.dumps(manifest))
    os.utime(folder / name, (created, created))


def test_fragment_library_lists_fragments_newest_first(qtbot, tmp_path):
    write_manifest(tmp_path, "older", 0.7, 0.91, time.time() - 100)
    write_manifest(tmp_path, "newer", 0.5, 0.8, time.time())
    (tmp_path / "not-a-fragment").mkdir()
    library = FragmentLibrary(tmp_path)
    qtbot.addWidget(library)
    assert library.count() == 2
    first = library.tree.topLevelItem(0)
    assert [first.text(i) for i in range(4)] == ["newer", "builtin:shapes", "50%", "0.800"]
    library.tree.setCurrentItem(first)
    with qtbot.waitSignal(library.open_requested) as opened:
        qtbot.mouseClick(library.open_button, Qt.MouseButton.LeftButton)
    assert opened.args == [str(tmp_path / "newer")]


def test_seeds_are_a_list_or_a_count():
    assert parse_seeds("0, 1,  7", "list") == [0, 1, 7]
    assert parse_seeds("3", "count") == [0, 1, 2]
    with pytest.raises(SeedsError, match="whole numbers"):
        parse_seeds("1, two", "list")
    with pytest.raises(SeedsError, match="at least 1"):
        parse_seeds("0", "count")


def test_model_panel_takes_a_dropped_checkpoint_and_asks_to_load_it(qtbot, tmp_path):
    panel = ModelPanel()
    qtbot.addWidget(panel)
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(checkpoint))])
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QDropEvent

    event = QDropEvent(QPointF(QPoint(5, 5)), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    panel.dropEvent(event)
    assert panel.spec() == str(checkpoint)
    panel.dtype_combo.setCurrentText("fp16")
    with qtbot.waitSignal(panel.load_requested) as requested:
        qtbot.mouseClick(panel.load_button, Qt.MouseButton.LeftButton)
    assert requested.args == [str(checkpoint), "auto", "fp16", False]


def test_the_window_opens_without_importing_torch_or_diffusers(tmp_path):
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from app.main_window import StudioWindow\n"
        "from app.settings import StudioSettings\n"
        f"w = StudioWindow(settings=StudioSettings({str(tmp_path / 's.ini')!r}), "
        f"fragments_dir={str(tmp_path / 'f')!r})\n"
        "w.show(); app.processEvents()\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'open_clip') if m in sys.modules))\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, env=env, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_log_file_receives_worker_errors(qtbot, tmp_path):
    import logging

    from app.logging_setup import setup_logging
    from app.workers.core_worker import CoreWorker
    from core.errors import FragmentError

    def fail(progress=None):
        raise FragmentError("The fragment at /x has no weights file.")

    root = logging.getLogger()
    before = list(root.handlers)
    path = setup_logging(tmp_path / "logs" / "headroom-studio.log")
    try:
        worker = CoreWorker(fail, name="Open fragment")
        with qtbot.waitSignal(worker.finished, timeout=10000):
            worker.start()
    finally:
        for handler in [h for h in root.handlers if h not in before]:
            handler.close()
            root.removeHandler(handler)
    text = path.read_text("utf-8")
    assert "HeadRoom Studio log:" in text
    assert "Open fragment failed: The fragment at /x has no weights file." in text
