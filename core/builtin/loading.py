"""Loads `builtin:shapes` from resources/builtin/shapes (a diffusers folder, weights in safetensors).

Until trained weights are shipped, a seeded random-init pipeline of the same architecture stands in.
"""

from __future__ import annotations

import hashlib
import logging

from core.resources import resources_root

BUILTIN_NAME = "builtin:shapes"
log = logging.getLogger(__name__)


def builtin_folder():
    return resources_root() / "builtin" / "shapes"


def has_trained_weights() -> bool:
    return (builtin_folder() / "unet" / "diffusion_pytorch_model.safetensors").is_file()


def folder_weights_hash(folder) -> str:
    """SHA-256 over each weight file's relative path and SHA-256 (remembered per file, see file_hash)."""
    from core.loading.file_hash import cached_file_sha256

    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.safetensors")):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(cached_file_sha256(path).encode())
    return digest.hexdigest()


def load_builtin(device: str = "cpu", dtype=None):
    import torch

    from core.loading.model import LoadedModel

    dtype = dtype or torch.float32
    if has_trained_weights():
        from core.loading.diffusers_folder import load_diffusers_folder

        loaded = load_diffusers_folder(builtin_folder(), device=device, dtype=dtype)
        loaded.family, loaded.name, loaded.source = "builtin", BUILTIN_NAME, "builtin"
        loaded.details["trained"] = True
        return loaded
    from core.builtin.architecture import build_pipeline

    log.warning("No trained weights in %s: using the seeded random stand-in.", builtin_folder())
    pipe = build_pipeline(seed=0)
    if dtype != torch.float32 or str(device) != "cpu":
        pipe = pipe.to(device=device, dtype=dtype)
    return LoadedModel(pipe, "builtin", BUILTIN_NAME, "standin-seed0-" + "0" * 50, "builtin", {"trained": False})
