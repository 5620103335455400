"""`LoadedModel`: a pipeline plus what HeadRoom needs to know about it (family, identity hash, source)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoadedModel:
    pipe: Any  # a diffusers StableDiffusionPipeline / StableDiffusionXLPipeline
    family: str  # "builtin", "sd15", "sd2", "sdxl"
    name: str  # what the user typed or a readable name
    model_hash: str  # sha256 hex of the checkpoint file, or of the folder's weight files
    source: str  # "builtin", "diffusers-folder", "single-file", "pickle"
    details: dict = field(default_factory=dict)

    @property
    def unet(self):
        return self.pipe.unet

    @property
    def device(self):
        return self.pipe.unet.device

    @property
    def dtype(self):
        return self.pipe.unet.dtype
