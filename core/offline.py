"""Guarantees that nothing reaches a model hub. Call `ensure_offline()` before importing diffusers/transformers."""

from __future__ import annotations

import os

_OFFLINE_VARS = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "DIFFUSERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def ensure_offline() -> None:
    for key, value in _OFFLINE_VARS.items():
        os.environ[key] = value


def import_diffusers():
    ensure_offline()
    import diffusers

    diffusers.utils.logging.disable_progress_bar()
    # diffusers' own warnings (dtype casting notes, deprecations) are not actionable for a HeadRoom user.
    diffusers.utils.logging.set_verbosity_error()
    return diffusers


def import_transformers():
    ensure_offline()
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers
