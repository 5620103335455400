"""The real flow on the built-in model, driven through the widgets: load -> short profile -> slider -> preview
(-> save), cancel mid-profile, and a responsive event loop while a job runs."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer

from app.main_window import StudioWindow
from app.settings import StudioSettings

JOB_TIMEOUT_MS = 240_000


@pytest.fixture
def window(qtbot, tmp_path):
    win = StudioWindow(settings=StudioSettings(tmp_path / "settings.ini"), fragments_dir=tmp_path / "fragments")
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()  # cancels and waits for any job, like a user closing the window


def run_to_end(qtbot, window, start, title):
    outcomes = []
    window.job_finished.connect(lambda t, o: outcomes.append((t, o)))
    with qtbot.waitSignal(window.job_finished, timeout=JOB_TIMEOUT_MS,
                          check_params_cb=lambda t, o: t == title):
        start()
    qtbot.waitUntil(lambda: not window.workers.is_busy(), timeout=10_000)
    return outcomes[-1]


def assert_event_loop_answered(ticks, limit_s=0.100):
    """A 10 ms timer kept firing: 95 % of its gaps under 100 ms, none near a freeze. The machine is shared
    (2 cores, other jobs): a lone scheduler hiccup is not the app's doing, a GIL-holding worker or a busy GUI
    thread delays every tick."""
    gaps = sorted(b - a - 0.010 for a, b in itertools.pairwise(ticks))  # latency beyond the 10 ms interval
    assert len(gaps) > 10, f"only {len(ticks)} ticks"
    p95 = gaps[int(0.95 * (len(gaps) - 1))]
    assert p95 < limit_s and gaps[-1] < 5 * limit_s, f"gaps p95 {p95 * 1000:.0f} ms, max {gaps[-1] * 1000:.0f} ms"


def load_builtin(qtbot, window):
    window.model_panel.set_spec("builtin:shapes")
    window.model_panel.device_combo.setCurrentText("cpu")
    outcome = run_to_end(qtbot, window, lambda: qtbot.mouseClick(window.model_panel.load_button,
                                                                 Qt.MouseButton.LeftButton), "Load model")
    assert outcome == ("Load model", "done"), window.errors


def set_short_profile(window, prompts="a red circle above a blue square", steps=2):
    panel = window.prompt_panel
    panel.prompts_edit.setPlainText(prompts)
    panel.seed_mode.setCurrentText("list")
    panel.seeds_edit.setText("0")
    panel.steps_spin.setValue(steps)


def test_load_profile_threshold_preview(qtbot, window):
    assert not window.prompt_panel.profile_button.isEnabled()  # nothing to profile before a model is loaded
    load_builtin(qtbot, window)
    assert "builtin:shapes" in window.model_panel.summary.text()
    assert window.prompt_panel.size_spin.value() == 64  # the built-in model's native size
    assert window.prompt_panel.guidance_spin.value() == 5.0  # its headroom.json's recommended guidance
    assert "Guidance set to 5" in window.model_panel.summary.text()
    assert window.prompt_panel.profile_button.isEnabled()

    set_short_profile(window, prompts="a red circle above a blue square\na green triangle")
    ticks = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))

    def click_profile_and_measure():
        qtbot.mouseClick(window.prompt_panel.profile_button, Qt.MouseButton.LeftButton)
        timer.start()  # the worker runs from here on

    outcome = run_to_end(qtbot, window, click_profile_and_measure, "Profile")
    timer.stop()
    assert outcome == ("Profile", "done"), window.errors
    assert_event_loop_answered(ticks)

    structure = window.session.structure
    heatmap = window.heatmap
    assert sorted(heatmap.data.names) == sorted(structure.names)
    stages = [n.split(".", 1)[0] for n in heatmap.data.names]
    assert stages == sorted(stages, key=["down_blocks", "mid_block", "up_blocks"].index)  # down, mid, up
    assert heatmap.data.matrix().shape == (len(structure.names), int(structure.heads.max()))
    assert window.live_preview.has_image()
    assert window.profile.meta["memory"]["samples"] >= 2  # the job's sampler went into the profile
    # the plot follows the whole job (profile, then the images), the profile records its own part
    assert window.memory_plot.peak[1] * 2**20 >= window.profile.meta["memory"]["peak_rss_bytes"]

    cross = next(n for n in structure.names if n.endswith("attn2"))
    with qtbot.waitSignal(heatmap.head_clicked):
        heatmap.head_clicked.emit(cross, 1)
    tokens = window.attention_map.token_combo
    assert tokens.count() == len(window.profile.meta["tokens"][0]) and tokens.currentIndex() == 1
    assert window.attention_map.map_item.image.shape == (16, 16)  # the 16x16 latent grid, drawn over the image
    first_map = window.attention_map.map_item.image.copy()
    tokens.setCurrentIndex(2)
    window.attention_map.prompt_combo.setCurrentIndex(1)  # the same head, for the second prompt
    assert [tokens.itemText(i).split(": ", 1)[1] for i in range(tokens.count())] == \
        list(window.profile.meta["tokens"][1])
    assert tokens.currentIndex() == 2  # the chosen token position stays
    assert (window.attention_map.base_item.image == np.asarray(window.reference_images[1])).all()
    assert not np.array_equal(window.attention_map.map_item.image, first_map)
    self_attention = next(n for n in structure.names if n.endswith("attn1"))
    heatmap.head_clicked.emit(self_attention, 0)
    assert "spatial map unavailable" in window.attention_map.title.text()

    energy_values = heatmap.data.values
    window.threshold_panel.score_combo.setCurrentText("token mass")
    assert heatmap.data.label.startswith("token mass")
    assert heatmap.data.values != energy_values  # cross-attention heads now coloured by their token mass
    window.threshold_panel.score_combo.setCurrentText("activation energy")
    assert heatmap.data.values == energy_values

    window.threshold_panel.set_value(10.0)
    few = window.selection.heads_total - window.selection.heads_kept
    window.threshold_panel.slider.setValue(600)  # 60 %: what a drag ends on
    assert window.threshold_panel.spin.value() == pytest.approx(60.0)
    many = window.selection.heads_total - window.selection.heads_kept
    assert many > few
    assert heatmap.pruned_count() == many  # one cross per pruned head
    assert window.threshold_panel.readouts["heads"].text() == f"{window.selection.heads_kept} / " \
                                                                f"{window.selection.heads_total}"
    name, heads = next(iter(window.selection.removed_heads().items()))
    assert heatmap.describe(name, heads[0]).endswith("pruned")

    assert window.preview_panel.preview_button.isEnabled()
    outcome = run_to_end(qtbot, window, lambda: qtbot.mouseClick(window.preview_panel.preview_button,
                                                                 Qt.MouseButton.LeftButton), "Preview")
    assert outcome == ("Preview", "done"), window.errors
    result = window.last_preview
    assert result["base_image"].size == result["fragment_image"].size == (64, 64)
    assert 0.0 <= result["ssim"] < 1.0  # 60 % of the heads gone: the images differ
    assert window.preview_panel.metric_labels["ssim"].text() == f"{result['ssim']:.3f}"
    assert window.preview_panel.fragment_image.has_image()
    assert window.preview_panel.note.text().startswith("Quick preview: attention heads masked logically.")

    window.threshold_panel.toggles["ffn"].setChecked(True)  # 25 % of each FFN's neurons go too
    # Healing is on by default; here it is shortened to keep the test quick. The saved fragment is then no longer
    # the masked preview's exact twin: it has been trained towards the base.
    assert window.threshold_panel.toggles["heal"].isChecked()
    window.threshold_panel.heal_spin.setValue(20)
    outcome = run_to_end(qtbot, window, lambda: qtbot.mouseClick(window.preview_panel.preview_button,
                                                                 Qt.MouseButton.LeftButton), "Preview")
    assert outcome == ("Preview", "done"), window.errors
    heads_only, result = result, window.last_preview
    assert window.preview_panel.note.text().startswith("Quick preview: attention heads and FFN neurons masked")
    assert np.asarray(result["base_image"]).tolist() == np.asarray(heads_only["base_image"]).tolist()
    assert np.asarray(result["fragment_image"]).tolist() != np.asarray(heads_only["fragment_image"]).tolist()

    assert window.preview_panel.save_button.isEnabled()
    outcome = run_to_end(qtbot, window, lambda: qtbot.mouseClick(window.preview_panel.save_button,
                                                                 Qt.MouseButton.LeftButton), "Save fragment")
    assert outcome == ("Save fragment", "done"), window.errors
    check_saved_fragment(window)

    window.library.tree.setCurrentItem(window.library.tree.topLevelItem(0))
    outcome = run_to_end(qtbot, window, lambda: qtbot.mouseClick(window.library.open_button,
                                                                 Qt.MouseButton.LeftButton), "Compare fragment")
    assert outcome == ("Compare fragment", "done"), window.errors
    compared = window.last_preview
    assert compared["fragment_path"] == str(window.last_saved.path)
    assert compared["base_image"].size == compared["fragment_image"].size == (64, 64)
    # the saved fragment (physically pruned, then healed 20 steps) stays close to what the quick preview showed
    assert compared["ssim"] == pytest.approx(result["ssim"], abs=0.1)
    assert window.preview_panel.note.text().startswith(f"Saved fragment {window.last_saved.path.name} "
                                                       "(physically pruned, healed 20 steps)")


def check_saved_fragment(window):
    """The folder the app wrote loads in core, and its manifest says what the window showed."""
    from core.fragments import load_fragment

    folders = [p for p in window.library.folder.iterdir() if p.is_dir()]
    assert len(folders) == 1 and window.library.count() == 1
    assert str(folders[0]) in window.preview_panel.note.text()  # the app says where it saved
    assert (folders[0] / "report.json").is_file()
    unet, manifest = load_fragment(folders[0], window.session.loaded)
    selection = window.selection
    assert manifest.pruning.heads_kept == selection.heads_kept
    assert manifest.pruning.heads_total == selection.heads_total
    assert manifest.pruning.attention_heads_removed == selection.removed_heads()
    assert manifest.base_model.hash == window.session.loaded.model_hash
    modules = dict(unet.named_modules())
    for name, kept in selection.kept.items():
        assert modules[name].heads == int(kept.sum()), name
    assert manifest.quality_eval.ssim_mean is not None and 0.0 <= manifest.quality_eval.ssim_mean <= 1.0
    assert manifest.quality_eval.samples == len(window.profile.meta["prompts"])  # each prompt at the first seed
    quality = manifest.quality_eval
    assert (quality.clip_base_mean is not None) != bool(quality.clip_unavailable_reason)  # a score or a why
    assert manifest.performance.base_latency_ms > 0 and manifest.performance.fragment_latency_ms > 0
    assert manifest.size.fragment_params < manifest.size.base_params
    assert manifest.pruning.ffn.ratio == 0.25 and manifest.pruning.ffn.neurons_kept < manifest.pruning.ffn.neurons_total
    assert manifest.healing.steps == window.threshold_panel.heal_spin.value()
    assert manifest.healing.prompts == window.profile.meta["prompts"]


def test_cancel_mid_profile_leaves_the_app_usable(qtbot, window):
    load_builtin(qtbot, window)
    set_short_profile(window, steps=30)
    outcomes = []
    window.job_finished.connect(lambda t, o: outcomes.append((t, o)))
    qtbot.mouseClick(window.prompt_panel.profile_button, Qt.MouseButton.LeftButton)
    # the job first makes the prompt's image, then profiles: wait until profiling steps are under way
    qtbot.waitUntil(lambda: "seed 0" in window.job_progress.label.text(), timeout=JOB_TIMEOUT_MS)
    assert outcomes == [] and window.workers.is_busy() and window.job_progress.cancel_button.isEnabled()
    assert window.live_preview.has_image()  # the image of the prompt being profiled
    assert "ETA" in window.job_progress.label.text()
    with qtbot.waitSignal(window.job_finished, timeout=60_000):
        qtbot.mouseClick(window.job_progress.cancel_button, Qt.MouseButton.LeftButton)
    assert outcomes == [("Profile", "cancelled")]
    assert window.errors == []
    assert window.profile is None
    qtbot.waitUntil(lambda: window.prompt_panel.profile_button.isEnabled(), timeout=10_000)
    assert window.job_progress.label.text() == "Profile: cancelled"

    set_short_profile(window, steps=1)
    outcome = run_to_end(qtbot, window, window.start_profile, "Profile")
    assert outcome == ("Profile", "done"), window.errors
    assert window.selection is not None


def test_a_missing_model_shows_cores_message_in_a_dialog(qtbot, window, tmp_path):
    from PySide6.QtWidgets import QMessageBox

    missing = tmp_path / "nowhere.safetensors"
    window.model_panel.set_spec(str(missing))
    outcome = run_to_end(qtbot, window, lambda: qtbot.mouseClick(window.model_panel.load_button,
                                                                 Qt.MouseButton.LeftButton), "Load model")
    assert outcome == ("Load model", "failed")
    boxes = [w for w in window.findChildren(QMessageBox) if w.isVisible()]
    assert len(boxes) == 1
    assert boxes[0].text().startswith(f"No model at {missing}: the file or folder does not exist.")
    assert window.session is None and window.model_panel.load_button.isEnabled()
    assert not window.prompt_panel.profile_button.isEnabled()
    boxes[0].accept()


def test_choosing_cuda_without_a_gpu_says_so(qtbot, window):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    window.model_panel.set_spec("builtin:shapes")
    window.model_panel.device_combo.setCurrentText("cuda")
    outcome = run_to_end(qtbot, window, lambda: qtbot.mouseClick(window.model_panel.load_button,
                                                                 Qt.MouseButton.LeftButton), "Load model")
    assert outcome == ("Load model", "failed")
    assert window.errors == [("Device 'cuda' was chosen, but this installation of PyTorch sees no CUDA GPU. "
                              "Choose 'auto' or 'cpu', or install a CUDA build of PyTorch and a driver.")]


def test_pickle_checkpoints_load_only_with_consent(qtbot, window, tmp_path):
    import torch
    from PySide6.QtWidgets import QMessageBox

    checkpoint = tmp_path / "model.ckpt"
    torch.save({"just.one.tensor": torch.zeros(2)}, checkpoint)  # a real pickle, but not a Stable Diffusion model
    window.model_panel.set_spec(str(checkpoint))
    messages = []
    window.error_shown.connect(messages.append)
    click_load = lambda: qtbot.mouseClick(window.model_panel.load_button, Qt.MouseButton.LeftButton)
    assert run_to_end(qtbot, window, click_load, "Load model") == ("Load model", "failed")
    assert messages[-1].startswith("model.ckpt is a pickle (.ckpt) file.")
    assert "'Allow pickle files' checkbox (app)" in messages[-1]
    for box in window.findChildren(QMessageBox):
        box.accept()
    window.model_panel.pickle_check.setChecked(True)
    assert run_to_end(qtbot, window, click_load, "Load model") == ("Load model", "failed")
    # with consent the tensors were read (weights_only) and the next check speaks: not a known architecture
    assert len(messages) == 2 and messages[-1].startswith("Unrecognised checkpoint: found 1 tensors")


def test_a_diffusers_folder_loads_and_is_remembered(qtbot, window, tmp_path):
    load_builtin(qtbot, window)
    folder = tmp_path / "my model"
    window.session.loaded.pipe.save_pretrained(str(folder), safe_serialization=True)
    window.model_panel.set_spec(str(folder))
    outcome = run_to_end(qtbot, window, lambda: qtbot.mouseClick(window.model_panel.load_button,
                                                                 Qt.MouseButton.LeftButton), "Load model")
    assert outcome == ("Load model", "done"), window.errors
    assert window.session.loaded.source == "diffusers-folder"
    assert window.heatmap.data is None and window.profile is None  # a new model starts clean
    assert window.session.summary["heads"] == window.session.structure.total_heads > 0
    assert window.prompt_panel.guidance_spin.value() == 7.5  # no headroom.json: the usual default, not the last model's
    assert window.settings.recent_models() == ["builtin:shapes", str(folder)]
    combo = window.model_panel.spec_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["builtin:shapes", str(folder)]


def test_settings_survive_closing_the_window(qtbot, tmp_path):
    settings_path = tmp_path / "settings.ini"
    first = StudioWindow(settings=StudioSettings(settings_path), fragments_dir=tmp_path / "fragments")
    qtbot.addWidget(first)
    set_short_profile(first, prompts="one prompt\nanother prompt", steps=7)
    first.model_panel.dtype_combo.setCurrentText("bf16")
    first.threshold_panel.set_value(42.5)
    first.close()
    second = StudioWindow(settings=StudioSettings(settings_path), fragments_dir=tmp_path / "fragments")
    qtbot.addWidget(second)
    assert second.prompt_panel.prompts() == ["one prompt", "another prompt"]
    assert second.prompt_panel.steps_spin.value() == 7
    assert second.model_panel.dtype_combo.currentText() == "bf16"
    assert second.threshold_panel.value() == pytest.approx(42.5)


def test_closing_the_window_mid_job_stops_the_worker(qtbot, tmp_path):
    win = StudioWindow(settings=StudioSettings(tmp_path / "settings.ini"), fragments_dir=tmp_path / "fragments")
    qtbot.addWidget(win)
    win.show()
    load_builtin(qtbot, win)
    set_short_profile(win, steps=30)
    outcomes = []
    win.job_finished.connect(lambda t, o: outcomes.append((t, o)))
    win.start_profile()
    qtbot.waitUntil(lambda: win.job_progress.bar.value() >= 1, timeout=JOB_TIMEOUT_MS)
    worker = win.workers.running()[0]
    started = time.perf_counter()
    win.close()  # cancels, waits for the worker, then closes
    assert time.perf_counter() - started < 30
    assert worker.done and outcomes == [("Profile", "cancelled")]
    assert not win.sampler.running  # the memory sampler's thread is stopped too
