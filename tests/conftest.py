"""Shared fixtures. Qt runs offscreen; nothing reaches a network."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def builtin_pipe():
    """The built-in model, loaded once per session through the same path a user takes. Do not mutate it."""
    from core.loading import load_model

    return load_model("builtin:shapes").pipe
