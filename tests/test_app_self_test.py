"""`headroom-studio --self-test`, as the packaged build runs it: a separate process, offscreen."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_studio(tmp_path, *args, timeout=600):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_STATE_HOME=str(tmp_path / "state"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"))
    return subprocess.run([sys.executable, "-c", "import sys; from app.main import main; sys.exit(main())", *args],
                          check=False, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)


def test_self_test_passes_and_saves_a_screenshot(tmp_path):
    from PySide6.QtGui import QImage

    shot = tmp_path / "shots" / "main.png"
    done = run_studio(tmp_path, "--self-test", "--screenshot", str(shot))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "self-test passed" in done.stdout
    for path in (shot, shot.with_name("main-profiling.png")):  # the end state, and one while profiling
        image = QImage(str(path))
        assert (image.width(), image.height()) == (1640, 960), path
    log = tmp_path / "state" / "HeadRoom" / "log" / "headroom-studio.log"
    text = log.read_text("utf-8")  # the log file lives in the user log directory
    assert "HeadRoom Studio log:" in text and "Save fragment" not in done.stderr
    assert not (tmp_path / "data" / "HeadRoom" / "fragments").exists()  # the test's fragment was temporary


def test_self_test_fails_with_the_reason(tmp_path):
    done = run_studio(tmp_path, "--self-test", "--timeout", "0.5")
    assert done.returncode == 1
    assert "self-test failed: timed out after 0 s" in done.stderr, done.stderr
