"""The one place that knows where bundled resources live (source tree, editable install, or frozen build)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_ENV_OVERRIDE = "HEADROOM_RESOURCES"


def resources_root() -> Path:
    override = os.environ.get(_ENV_OVERRIDE)
    if override:
        return Path(override)
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    """Path of a bundled resource; raises FileNotFoundError naming the resources folder when it is missing."""
    path = resources_root().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"Bundled resource {'/'.join(parts)!r} is missing from {resources_root()}. "
            "The installation is incomplete: reinstall HeadRoom or set HEADROOM_RESOURCES."
        )
    return path
