"""Offline model loading: the built-in model, diffusers folders, single-file checkpoints, consented pickles."""

from core.loading.api import load_model
from core.loading.model import LoadedModel

__all__ = ["load_model", "LoadedModel"]
