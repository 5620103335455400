"""`headroom-studio --self-test`: load the built-in model, profile it briefly, move the threshold, preview,
save the fragment (into a temporary library), optionally save a screenshot, and exit 0; any failure exits 1
with the reason on stderr."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QTimer

SELF_TEST_PROMPTS = ("a red circle above a blue square", "a green triangle on a yellow background")
SELF_TEST_PROMPT = SELF_TEST_PROMPTS[0]
SELF_TEST_STEPS = 3
SELF_TEST_THRESHOLD = 40.0


class SelfTest:
    def __init__(self, app, window, screenshot: str | None) -> None:
        self.app, self.window, self.screenshot = app, window, screenshot
        self.exit_code: int | None = None
        self.reason = ""
        self.progress_shot: Path | None = None
        if screenshot:
            shot = Path(screenshot)
            self.progress_shot = shot.with_name(f"{shot.stem}-profiling{shot.suffix}")
        window.job_finished.connect(self._on_job_finished)
        window.job_progress.bar.valueChanged.connect(self._maybe_shoot_progress)
        window.error_shown.connect(lambda message: self.fail(f"error dialog: {message}"))

    def start(self) -> None:
        self.window.load_model("builtin:shapes", "cpu", "fp32")

    def _on_job_finished(self, title: str, outcome: str) -> None:
        if outcome != "done":
            self.fail(f"{title} {outcome}")
            return
        if title == "Load model":
            panel = self.window.prompt_panel
            panel.prompts_edit.setPlainText("\n".join(SELF_TEST_PROMPTS))
            panel.seed_mode.setCurrentText("list")
            panel.seeds_edit.setText("0")
            panel.steps_spin.setValue(SELF_TEST_STEPS)
            self.window.start_profile()
        elif title == "Profile":
            self.window.threshold_panel.set_value(SELF_TEST_THRESHOLD)
            if self.window.selection is None:
                self.fail("no head selection after profiling")
                return
            self.window.start_preview(SELF_TEST_PROMPT, 0)
        elif title == "Preview":
            self.window.save_fragment()
        elif title == "Save fragment":
            if self.window.library.count() != 1:
                self.fail("the saved fragment is not in the library")
                return
            self._show_first_cross_head()
            QTimer.singleShot(300, self.succeed)  # let the views paint before the screenshot

    def _maybe_shoot_progress(self, _value: int) -> None:
        """One screenshot while profiling steps run: progress with ETA, Cancel, the prompt's image."""
        if self.progress_shot is None or "seed" not in self.window.job_progress.label.text():
            return
        path, self.progress_shot = self.progress_shot, None
        QTimer.singleShot(0, lambda: self._grab(path))  # after the label has caught up with the bar

    def _grab(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.window.grab().save(str(path)):
            print(f"screenshot: {path}")

    def _show_first_cross_head(self) -> None:
        names = self.window.session.structure.names
        cross = next((n for n in names if n.endswith("attn2")), None)
        if cross is not None:
            self.window._on_head_clicked(cross, 0)

    def succeed(self) -> None:
        if self.screenshot:
            path = Path(self.screenshot)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not self.window.grab().save(str(path)):
                self.fail(f"could not write the screenshot {path}")
                return
            print(f"screenshot: {path}")
        self.finish(0, "self-test passed")

    def fail(self, reason: str) -> None:
        self.finish(1, f"self-test failed: {reason}")

    def finish(self, code: int, reason: str) -> None:
        if self.exit_code is not None:
            return
        self.exit_code, self.reason = code, reason
        self.window.close()
        self.app.quit()


def run_self_test(app, screenshot: str | None = None, timeout_s: float = 900.0) -> int:
    from app.main_window import StudioWindow
    from app.settings import StudioSettings

    with tempfile.TemporaryDirectory(prefix="headroom-self-test-") as tmp:
        window = StudioWindow(settings=StudioSettings(Path(tmp) / "settings.ini"),
                              fragments_dir=Path(tmp) / "fragments")
        window.show()
        test = SelfTest(app, window, screenshot)
        QTimer.singleShot(0, test.start)
        QTimer.singleShot(int(timeout_s * 1000), lambda: test.fail(f"timed out after {timeout_s:.0f} s"))
        app.exec()
        _delete_now(window)  # before the temporary folder and the interpreter go: no teardown-order crash
        code = 1 if test.exit_code is None else test.exit_code
        print(test.reason or "self-test ended without a result", file=sys.stderr if code else sys.stdout)
        return code


def _delete_now(widget) -> None:
    import shiboken6

    if shiboken6.isValid(widget):
        shiboken6.delete(widget)
