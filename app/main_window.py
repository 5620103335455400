"""`StudioWindow`: the main window. Lays out the views and runs each long step in a CoreWorker:
load -> profile -> (scores, threshold, live estimate) -> preview -> save; one job at a time."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QStatusBar,
    QVBoxLayout,
    QWidget,
)

from app.main_thread_gc import MainThreadGarbageCollector
from app.settings import StudioSettings
from app.views.attention_map import AttentionMapView
from app.views.fragment_library import FragmentLibrary
from app.views.head_heatmap import HeadHeatmap
from app.views.image_label import ImageLabel
from app.views.job_progress import JobProgress
from app.views.memory_plot import MemoryPlot
from app.views.model_panel import ModelPanel
from app.views.preview_panel import PreviewPanel
from app.views.prompt_panel import PromptPanel
from app.views.threshold_panel import MODEL_RUN_SCORES, ThresholdPanel
from app.workers import jobs
from app.workers.core_worker import CoreWorker
from app.workers.worker_set import WorkerSet

log = logging.getLogger(__name__)


def default_fragments_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("HeadRoom", appauthor=False)) / "fragments"


class StudioWindow(QMainWindow):
    job_finished = Signal(str, str)  # job name, outcome: "done" | "failed" | "cancelled"
    error_shown = Signal(str)

    def __init__(self, settings: StudioSettings | None = None, fragments_dir: Path | None = None,
                 parent=None) -> None:
        super().__init__(parent)
        self._gc = MainThreadGarbageCollector(parent=self)
        self.setWindowTitle("HeadRoom Studio")
        self.settings = settings or StudioSettings()
        self.workers = WorkerSet(self)
        self.sampler = None  # core.profiling.MemorySampler of the running job
        self.session = None  # jobs.ModelSession
        self.profile = None
        self.scores: dict = {}  # method -> HeadScores
        self.selection = None
        self.estimate = None
        self.reference_images: dict = {}  # prompt index -> image generated at the first seed
        self.last_preview: dict | None = None
        self._map_head: tuple[str, int] | None = None  # the head whose map is shown
        self.errors: list[str] = []
        self._job_title, self._job_on_result, self._job_outcome = "", None, ""
        self._build_views(fragments_dir or default_fragments_dir())
        self._build_menus()
        self._connect()
        self._restore_settings()
        self._update_enabled()

    # -- layout -------------------------------------------------------------------------------------------
    def _build_views(self, fragments_dir: Path) -> None:
        self.model_panel = ModelPanel()
        self.prompt_panel = PromptPanel()
        self.threshold_panel = ThresholdPanel()
        self.live_preview = ImageLabel("generated image", min_side=96)
        self.heatmap = HeadHeatmap()
        self.attention_map = AttentionMapView()
        self.preview_panel = PreviewPanel()
        self.memory_plot = MemoryPlot()
        self.library = FragmentLibrary(fragments_dir)
        self.job_progress = JobProgress()
        left = _column(self.model_panel, self.prompt_panel, self.live_preview, self.threshold_panel)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(340)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.heatmap)
        top.addWidget(self.attention_map)
        top.setSizes([620, 300])
        centre = QSplitter(Qt.Orientation.Vertical)
        centre.addWidget(top)
        centre.addWidget(self.preview_panel)
        centre.setSizes([520, 330])
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.memory_plot)
        right.addWidget(self.library)
        main = QSplitter(Qt.Orientation.Horizontal)
        for widget in (scroll, centre, right):
            main.addWidget(widget)
        main.setSizes([360, 920, 340])
        self.setCentralWidget(main)
        status = QStatusBar()
        status.addPermanentWidget(self.job_progress, 1)
        self.setStatusBar(status)
        self.resize(1640, 960)

    def _build_menus(self) -> None:
        from PySide6.QtGui import QKeySequence

        file_menu = self.menuBar().addMenu("&File")
        self.open_file_action = file_menu.addAction("Open checkpoint…", self.model_panel._on_file_clicked)
        self.open_file_action.setShortcut(QKeySequence.StandardKey.Open)
        file_menu.addAction("Open diffusers folder…", self.model_panel._on_folder_clicked)
        file_menu.addSeparator()
        self.save_action = file_menu.addAction("Save fragment", self.save_fragment)
        self.save_action.setShortcut(QKeySequence.StandardKey.Save)
        file_menu.addSeparator()
        file_menu.addAction("Quit", self.close).setShortcut(QKeySequence.StandardKey.Quit)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction("Where are my files?", self._show_locations)

    def _show_locations(self) -> None:
        from app.logging_setup import log_file_path

        box = QMessageBox(QMessageBox.Icon.Information, "HeadRoom Studio files",
                          f"Fragments: {self.library.folder}\nSettings: {self.settings.path}\n"
                          f"Log file: {log_file_path()}", QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def _connect(self) -> None:
        self.model_panel.load_requested.connect(self.load_model)
        self.prompt_panel.profile_requested.connect(self.start_profile)
        self.threshold_panel.config_changed.connect(self._on_threshold_changed)
        self.preview_panel.preview_requested.connect(self.start_preview)
        self.preview_panel.save_requested.connect(self.save_fragment)
        self.heatmap.head_clicked.connect(self._on_head_clicked)
        self.attention_map.prompt_changed.connect(self._on_map_prompt_changed)
        self.job_progress.cancel_requested.connect(self.workers.cancel_all)
        self.workers.worker_finished.connect(self._on_worker_finished)
        self.library.open_requested.connect(self.open_fragment)

    def _restore_settings(self) -> None:
        self.model_panel.set_recent(self.settings.recent_models())
        self.model_panel.set_spec(self.settings.value("model/last", self.settings.recent_models()[0]))
        self.model_panel.set_choice(self.settings.value("model/device", "auto"), self.settings.value("model/dtype",
                                                                                                     "fp32"))
        self.prompt_panel.restore(self.settings)
        self.threshold_panel.set_value(self.settings.value("threshold/value", 30.0, float))

    def save_settings(self) -> None:
        self.settings.set_values({"model/last": self.model_panel.spec(),
                                  "model/device": self.model_panel.device_combo.currentText(),
                                  "model/dtype": self.model_panel.dtype_combo.currentText(),
                                  "threshold/value": self.threshold_panel.value(), **self.prompt_panel.settings()})

    # -- running jobs -------------------------------------------------------------------------------------
    def run_job(self, title: str, fn, *args, on_result, **kwargs) -> CoreWorker | None:
        """Starts one job. Worker signals go to bound methods of this window, so Qt queues them to the GUI
        thread (a lambda would run in the worker's thread); one job at a time, so the title is state."""
        if self.workers.is_busy():
            self.show_error("Busy", "Another job is running; wait for it or cancel it first.")
            return None
        self._job_title, self._job_on_result, self._job_outcome = title, on_result, None
        self._start_sampler(title)
        if kwargs.pop("with_sampler", False):
            kwargs["sampler"] = self.sampler
        worker = CoreWorker(fn, *args, name=title, **kwargs)
        worker.started.connect(self._on_job_started)
        worker.progress_changed.connect(self._on_job_progress)
        worker.result_ready.connect(self._on_job_result)
        worker.failed.connect(self._on_job_failed)
        worker.cancelled.connect(self._on_job_cancelled)
        self.workers.start(worker)
        self._update_enabled(busy=True)
        return worker

    def _start_sampler(self, title: str) -> None:
        from core.profiling.memory import MemorySampler

        device = self.session.summary["device"] if self.session is not None else None
        self.sampler = MemorySampler(interval_s=0.1, device=device).start()
        self.memory_plot.follow(self.sampler, title)

    def _stop_sampler(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        self.memory_plot.stop_following()

    def _on_job_started(self) -> None:
        self.job_progress.set_running(self._job_title)

    def _on_job_progress(self, event) -> None:
        self.job_progress.set_progress(event)
        payload = event.payload if isinstance(event.payload, dict) else {}
        if payload.get("image") is not None:
            self.live_preview.set_image(payload["image"])

    def _on_job_result(self, result) -> None:
        self._job_outcome = "done"
        try:
            self._job_on_result(result)
        except Exception as exc:  # showing a result must never leave the window half-updated silently
            log.exception("showing the result of %s failed", self._job_title)
            self._job_outcome = "failed"
            self.show_error(f"{self._job_title} failed", f"Could not show the result: {exc}")

    def _on_job_failed(self, message: str) -> None:
        self._job_outcome = "failed"
        self.show_error(f"{self._job_title} failed", message)

    def _on_job_cancelled(self) -> None:
        self._job_outcome = "cancelled"

    def _on_worker_finished(self, worker) -> None:
        """The job's thread is over: its result, error or cancellation was handled, except when the window
        is closing (then the worker's own record of how it ended is all there is)."""
        outcome = self._job_outcome or worker.outcome
        self._stop_sampler()
        self.job_progress.set_idle(f"{self._job_title}: {outcome}")
        self._update_enabled()
        self.job_finished.emit(self._job_title, outcome)

    def show_error(self, title: str, message: str) -> None:
        log.warning("%s: %s", title, message)
        self.errors.append(message)
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # not exec(): the event loop (and running jobs' progress) keeps going
        self.error_shown.emit(message)

    def _update_enabled(self, busy: bool | None = None) -> None:
        busy = self.workers.is_busy() if busy is None else busy
        self.model_panel.set_busy(busy)
        self.prompt_panel.profile_button.setEnabled(not busy and self.session is not None)
        self.preview_panel.preview_button.setEnabled(not busy and self.selection is not None)
        can_save = not busy and self.selection is not None and self._fragments_available()
        self.preview_panel.save_button.setEnabled(can_save)
        self.save_action.setEnabled(can_save)

    # -- load ---------------------------------------------------------------------------------------------
    def load_model(self, spec: str, device: str = "auto", dtype: str = "fp32", allow_pickle: bool = False) -> None:
        self.model_panel.show_message(f"Loading {spec}…")
        self.run_job("Load model", jobs.load_job, spec, device, dtype, allow_pickle,
                     on_result=self._on_model_loaded)

    def _on_model_loaded(self, session) -> None:
        self.session = session
        self.profile, self.scores, self.selection, self.last_preview = None, {}, None, None
        self.heatmap.clear()  # nothing of the previous model stays on screen
        self.preview_panel.clear()
        self.live_preview.clear_image()
        self.attention_map.show_unavailable("Profile the model, then click a cross-attention head.")
        self.model_panel.show_summary(session.summary)
        self.prompt_panel.size_spin.setValue(session.summary["native_size"])  # what the model was trained at
        if session.summary.get("recommended_guidance") is not None:  # what the model is measured best at
            self.prompt_panel.guidance_spin.setValue(session.summary["recommended_guidance"])
        if session.loaded.source != "builtin":
            self.settings.add_recent_model(session.summary["spec"])  # what loads it again (a path)
        self.model_panel.set_recent(self.settings.recent_models())
        self.threshold_panel.clear_estimate()

    # -- profile ------------------------------------------------------------------------------------------
    def start_profile(self) -> None:
        try:
            request = self.prompt_panel.request()
        except ValueError as exc:
            self.show_error("Check the prompts", str(exc))
            return
        self.reference_images = {}
        self.run_job("Profile", jobs.profile_job, self.session, **request, with_sampler=True,
                     on_result=self._on_profiled)

    def _on_profiled(self, result) -> None:
        self.profile, self.reference_images = result.profile, result.images
        self.heatmap.method = None
        self.scores, self.selection = {}, None
        self.preview_panel.set_prompts(self.profile.meta["prompts"], self.profile.meta["seeds"][0])
        self.attention_map.set_prompts(self.profile.meta["prompts"])
        self._map_head = None
        self.attention_map.show_unavailable("Click a cross-attention head in the heatmap.")
        if self.reference_images:
            self.live_preview.set_image(self.reference_images[0])
        self._on_threshold_changed(self.threshold_panel.config())

    # -- threshold, scores, estimate -------------------------------------------------------------------
    def _on_threshold_changed(self, config: dict) -> None:
        if self.profile is None:
            return
        method = config["method"]
        if method not in self.scores:
            if method in MODEL_RUN_SCORES:
                if not self.workers.is_busy():  # the running scoring job applies the threshold when done
                    self.run_job(f"{method.capitalize()} scores", jobs.scores_for, self.profile, method, self.session,
                                 on_result=lambda scores, m=method: self._on_model_run_scores_ready(m, scores))
                return
            from core.errors import HeadRoomError

            try:
                self.scores[method] = jobs.scores_for(self.profile, method)
            except HeadRoomError as exc:  # e.g. no token mass in this profile: the message says what to do
                self.show_error("Score unavailable", str(exc))
                return
        if self.heatmap.data is None or self.heatmap.method != method:
            self._show_scores(method)
        self._apply_threshold(config)

    def _on_model_run_scores_ready(self, method: str, scores) -> None:
        self.scores[method] = scores
        self._show_scores(method)
        self._apply_threshold(self.threshold_panel.config())

    def _show_scores(self, method: str) -> None:
        from app.views.head_heatmap import HeatmapData

        scores = self.scores[method]
        kinds = {m.name: m.kind for m in self.profile.modules}
        names = unet_order(self.session.structure.names)
        label = f"{method.replace('_', ' ')} ({scores.normalize}-normalised)"
        self.heatmap.set_data(HeatmapData(names, [kinds.get(n, "?") for n in names],
                                          [list(map(float, scores.values[n])) for n in names], label))
        self.heatmap.method = method

    def _apply_threshold(self, config: dict) -> None:
        from core.errors import HeadRoomError
        from core.pruning.selection import estimate, select_heads

        scores = self.scores.get(config["method"])
        if scores is None:
            return
        try:
            self.selection = select_heads(scores, jobs.prune_config_from(config), self.session.structure)
        except HeadRoomError as exc:
            self.threshold_panel.clear_estimate()
            self.threshold_panel.readouts["heads"].setText(str(exc))
            return
        self.estimate = estimate(self.selection, self.session.structure)
        self.threshold_panel.show_estimate(self.estimate.as_dict())
        self.heatmap.set_pruned(self.selection.removed_heads())
        self._update_enabled()

    # -- head map ------------------------------------------------------------------------------------------
    def _on_head_clicked(self, name: str, head: int) -> None:
        self._map_head = (name, head)
        prompt = self.attention_map.current_prompt()
        try:
            maps = self.profile.spatial_map(name, prompt)
        except (KeyError, ValueError) as exc:
            self.attention_map.show_unavailable(f"{name}, head {head}: spatial map unavailable. {exc}")
            return
        tokens = list(self.profile.meta["tokens"][prompt])
        self.attention_map.show_map(f"{name}, head {head}", tokens, maps[head].numpy(),
                                    self.reference_images.get(prompt))

    def _on_map_prompt_changed(self, _index: int) -> None:
        if self._map_head is not None:
            self._on_head_clicked(*self._map_head)

    # -- preview ------------------------------------------------------------------------------------------
    def start_preview(self, prompt: str, seed: int) -> None:
        meta = self.profile.meta
        self.run_job("Preview", jobs.preview_job, self.session, self.selection, prompt, seed, meta["steps"],
                     meta["guidance"], meta["width"], clip=self.session.clip, profile=self.profile,
                     config=self.threshold_panel.config(), on_result=self._on_preview_ready)

    def _on_preview_ready(self, result: dict) -> None:
        self.last_preview = result
        self.preview_panel.show_result(result)

    # -- save / open ------------------------------------------------------------------------------------
    def _fragments_available(self) -> bool:
        return self.profile is not None

    def fragment_folder_name(self) -> str:
        import re
        import time

        config = self.threshold_panel.config()
        model = re.sub(r"[^A-Za-z0-9._-]+", "-", self.session.loaded.name).strip("-")
        return f"{model}-{config['method']}-{config['mode']}{self.threshold_panel.value():g}-" \
               f"{time.strftime('%Y%m%d-%H%M%S')}"

    def save_fragment(self) -> None:
        out_dir = self.library.folder / self.fragment_folder_name()
        self.run_job("Save fragment", jobs.save_job, self.session, self.profile, self.threshold_panel.config(),
                     out_dir, clip=self.session.clip, on_result=self._on_fragment_saved)

    def _on_fragment_saved(self, saved) -> None:
        self.last_saved = saved
        self.library.refresh()
        quality, performance = saved.manifest.quality_eval, saved.manifest.performance
        message = f"Fragment saved to {saved.path} (SSIM {quality.ssim_mean:.3f} over {quality.samples} " \
                  f"image(s); report {saved.report_path.name})."
        if performance.base_peak_vram_mb and performance.fragment_peak_vram_mb:
            message += f" Peak memory {performance.base_peak_vram_mb:.0f} → " \
                       f"{performance.fragment_peak_vram_mb:.0f} MB ({performance.memory_method or 'measured'})."
        self.preview_panel.note.setText(message)
        self.statusBar().showMessage(message, 15000)

    def open_fragment(self, folder: str) -> None:
        if self.session is None:
            self.show_error("Open fragment", "Load the fragment's base model first.")
            return
        prompt = self.preview_panel.prompt_combo.currentText().strip() or next(iter(self.prompt_panel.prompts()), "")
        if not prompt:
            self.show_error("Open fragment", "Write a prompt (Prompts panel) to compare the fragment with its base.")
            return
        steps, guidance, size = (self.prompt_panel.steps_spin.value(), self.prompt_panel.guidance_spin.value(),
                                 self.prompt_panel.size_spin.value())
        self.run_job("Compare fragment", jobs.compare_job, self.session, folder, prompt,
                     self.preview_panel.seed_spin.value(), steps, guidance, size, clip=self.session.clip,
                     on_result=self._on_preview_ready)

    # -- closing ------------------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        self.save_settings()
        if not self.workers.shutdown(60000):
            log.error("Some jobs did not stop in time; closing anyway.")
        self._stop_sampler()
        self._gc.stop()
        super().closeEvent(event)


def unet_order(names: list[str]) -> list[str]:
    """Module names in the order data flows through the U: down blocks, mid block, up blocks (diffusers
    registers the mid block last)."""
    stage = {"down_blocks": 0, "mid_block": 1, "up_blocks": 2}
    return sorted(names, key=lambda n: stage.get(n.split(".", 1)[0], 3))  # stable: keeps order within a stage


def _column(*widgets) -> QWidget:
    column = QWidget()
    layout = QVBoxLayout(column)
    for widget in widgets:
        layout.addWidget(widget)
    layout.addStretch(1)
    return column
