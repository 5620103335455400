"""Fragments: a reduced UNet (safetensors) plus a validated manifest that says how it was made.

Importing this package does no work; names resolve on first use.
"""

from __future__ import annotations

from core.lazy import lazy_exports

_EXPORTS = {
    "FragmentManifest": "core.fragments.manifest",
    "SCHEMA_VERSION": "core.fragments.manifest",
    "save_fragment": "core.fragments.store",
    "load_fragment": "core.fragments.store",
    "apply_fragment": "core.fragments.store",
    "read_manifest": "core.fragments.store",
    "update_manifest": "core.fragments.store",
    "rebuild_from_base": "core.fragments.store",
    "LoadedFragment": "core.fragments.store",
    "extract_fragment": "core.fragments.extract",
    "FragmentRequest": "core.fragments.extract",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(_EXPORTS)
