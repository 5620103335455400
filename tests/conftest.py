"""Shared fixtures. Qt runs offscreen; nothing reaches a network."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# Tests never write into the user's cache folder: weight-file hashes are not remembered unless a test asks.
os.environ.setdefault("HEADROOM_HASH_CACHE", "off")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def builtin_pipe():
    """The built-in model, loaded once per session through the same path a user takes. Do not mutate it."""
    from core.loading import load_model

    return load_model("builtin:shapes").pipe


# --- app (issue 7): fail a test_app* test when a QThread it started is still running at teardown ---
@pytest.fixture(autouse=True)
def _dangling_qthreads(request, monkeypatch):
    module_name = getattr(getattr(request.node, "module", None), "__name__", "")
    if not module_name.split(".")[-1].startswith("test_app"):
        yield
        return
    import traceback

    import shiboken6
    from PySide6.QtCore import QThread

    started = []
    original_start = QThread.start

    def recording_start(self, *args, **kwargs):
        started.append((self, "".join(traceback.format_stack(limit=6)[:-1])))
        return original_start(self, *args, **kwargs)

    monkeypatch.setattr(QThread, "start", recording_start)
    yield
    dangling = [(t, where) for t, where in started if shiboken6.isValid(t) and t.isRunning()]
    for thread, _ in dangling:
        thread.wait(60000)  # let it end so it cannot crash the next test
    if dangling:
        pytest.fail("QThread(s) outlived the test; started at:\n" + "\n".join(w for _, w in dangling))


# --- app: collect garbage in the GUI thread before each app test, so a previous test's widgets are never
# destroyed from a worker thread by Python's automatic GC (that deadlocks Qt; see app/main_thread_gc.py) ---
@pytest.fixture(autouse=True)
def _collect_garbage_in_main_thread(request):
    module_name = getattr(getattr(request.node, "module", None), "__name__", "")
    if module_name.split(".")[-1].startswith("test_app"):
        import gc

        gc.collect()
    yield


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models: per-op thread start-up dominates on a shared 2-core CPU; one thread is several times faster.
    A module opts in with an autouse fixture that requests this one; the previous count is restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
