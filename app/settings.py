"""`StudioSettings`: recent models and the last-used settings, remembered between runs (QSettings, INI file)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

BUILTIN_SPEC = "builtin:shapes"
MAX_RECENT = 8


def default_settings_path() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("HeadRoom", appauthor=False)) / "headroom-studio.ini"


class StudioSettings:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_settings_path()
        self._qs = QSettings(str(self.path), QSettings.Format.IniFormat)

    def recent_models(self) -> list[str]:
        value = self._qs.value("models/recent", [])
        recent = [value] if isinstance(value, str) else list(value or [])
        return [BUILTIN_SPEC] + [m for m in recent if m and m != BUILTIN_SPEC]

    def add_recent_model(self, spec: str) -> None:
        recent = [spec] + [m for m in self.recent_models() if m != spec and m != BUILTIN_SPEC]
        self._qs.setValue("models/recent", [m for m in recent if m != BUILTIN_SPEC][:MAX_RECENT])
        self._qs.sync()

    def value(self, key: str, default=None, kind=None):
        value = self._qs.value(key, default)
        if kind is not None and value is not None:
            try:
                return kind(value)
            except (TypeError, ValueError):
                return default
        return value

    def set_values(self, values: dict) -> None:
        for key, value in values.items():
            self._qs.setValue(key, value)
        self._qs.sync()
