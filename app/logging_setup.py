"""The log file in the user log directory (platformdirs), plus warnings on stderr."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path


def log_file_path() -> Path:
    from platformdirs import user_log_dir

    return Path(user_log_dir("HeadRoom", appauthor=False)) / "headroom-studio.log"


def setup_logging(path: Path | None = None) -> Path:
    path = Path(path) if path else log_file_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(file_handler)
    root.addHandler(console)
    logging.getLogger(__name__).info("HeadRoom Studio log: %s", path)
    return path
