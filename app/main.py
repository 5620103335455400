"""`headroom-studio`: opens the main window on the built-in model. `--self-test [--screenshot FILE.png]` runs a
short profile and a preview offscreen and exits 0 on success (non-zero with the reason otherwise)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="headroom-studio", description="HeadRoom Studio: see, prune and save "
                                     "the attention heads your prompts use.")
    parser.add_argument("--model", default=None, help="model to load at start (default: the last one used)")
    parser.add_argument("--self-test", action="store_true",
                        help="open the window offscreen, profile and preview the built-in model, then exit")
    parser.add_argument("--screenshot", metavar="FILE.png", help="with --self-test: save a screenshot there")
    parser.add_argument("--timeout", type=float, default=900.0, help="with --self-test: give up after this many s")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.self_test:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from core.offline import ensure_offline

    ensure_offline()
    from PySide6.QtWidgets import QApplication

    from app.logging_setup import setup_logging
    from app.main_window import StudioWindow

    log_path = setup_logging()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("HeadRoom Studio")
    if args.self_test:
        from app.self_test import run_self_test

        return run_self_test(app, screenshot=args.screenshot, timeout_s=args.timeout)
    window = StudioWindow()
    import gc

    gc.freeze()  # Qt, pyqtgraph and the window live as long as the app: keep them out of full collections
    window.statusBar().showMessage(f"Log: {log_path}", 8000)
    window.show()
    window.load_model(args.model or window.model_panel.spec(), window.model_panel.device_combo.currentText(),
                      window.model_panel.dtype_combo.currentText())
    code = app.exec()
    from app.self_test import _delete_now

    _delete_now(window)  # the window (and its threads' owners) go before the QApplication does
    return code


if __name__ == "__main__":
    sys.exit(main())
