"""Profiling engine: per-head statistics of attention modules while a model generates.

Nothing heavy is imported here; names resolve on first use so `import core.profiling` stays cheap.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Profile": "core.profiling.profile_file",
    "ModuleRecord": "core.profiling.structure",
    "FfnRecord": "core.profiling.structure",
    "ProfilerConfig": "core.profiling.config",
    "HeadProfiler": "core.profiling.recorder",
    "profile_model": "core.profiling.run",
    "profile_unet": "core.profiling.run",
    "run_unet_loop": "core.profiling.run",
    "MemorySampler": "core.profiling.memory",
    "MemorySample": "core.profiling.memory",
    "SCHEMA_VERSION": "core.profiling.profile_file",
    "PROFILE_SUFFIX": "core.profiling.profile_file",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'core.profiling' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
