"""Where the fragment cache lives: an explicit folder, else $HEADROOM_CACHE_DIR, else the user cache dir."""

from __future__ import annotations

import os
from pathlib import Path

ENV_CACHE_DIR = "HEADROOM_CACHE_DIR"
APP_NAME = "HeadRoom"


def default_cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    override = os.environ.get(ENV_CACHE_DIR)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / "fragments"
