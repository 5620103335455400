"""Loads a diffusers-format folder (model_index.json + component subfolders), offline."""

from __future__ import annotations

import json
from pathlib import Path

from core.errors import ModelLoadError

_PIPELINE_FAMILY = {
    "StableDiffusionPipeline": None,  # sd15 or sd2, decided from the UNet's cross-attention width
    "StableDiffusionXLPipeline": "sdxl",
}


def _family_from_unet_config(config: dict) -> str:
    cross = config.get("cross_attention_dim")
    if config.get("addition_embed_type") == "text_time":
        return "sdxl"
    if cross == 1024:
        return "sd2"
    if cross == 768:
        return "sd15"
    return "custom"


def load_diffusers_folder(folder, device: str = "cpu", dtype=None):
    import torch

    from core.builtin.loading import folder_weights_hash
    from core.loading.model import LoadedModel
    from core.loading.model_defaults import read_model_defaults
    from core.offline import import_diffusers

    folder = Path(folder)
    index_path = folder / "model_index.json"
    if not index_path.is_file():
        raise ModelLoadError(
            f"{folder} is a folder but not a diffusers model: it has no model_index.json. "
            "Choose the folder that contains model_index.json, unet/, vae/ and text_encoder/, or a single .safetensors file."
        )
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{index_path} is not valid JSON ({exc}).") from exc
    class_name = index.get("_class_name", "")
    if class_name not in _PIPELINE_FAMILY:
        raise ModelLoadError(
            f"{folder} holds a {class_name or 'unknown'} pipeline; HeadRoom supports "
            "StableDiffusionPipeline (SD 1.x/2.x) and StableDiffusionXLPipeline (SDXL)."
        )
    for component in ("unet", "vae", "text_encoder"):
        if not (folder / component).is_dir():
            raise ModelLoadError(f"{folder} is missing its {component}/ subfolder; the diffusers folder is incomplete.")
    defaults = read_model_defaults(folder)
    diffusers = import_diffusers()
    pipeline_cls = getattr(diffusers, class_name)
    dtype = dtype or torch.float32
    try:
        extra = {"safety_checker": None, "requires_safety_checker": False} if class_name == "StableDiffusionPipeline" else {}
        pipe = pipeline_cls.from_pretrained(str(folder), dtype=dtype, local_files_only=True, **extra)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(f"Could not load the diffusers folder {folder}: {exc}") from exc
    pipe.set_progress_bar_config(disable=True)
    if str(device) != "cpu":
        pipe = pipe.to(device)
    family = _PIPELINE_FAMILY[class_name] or _family_from_unet_config(dict(pipe.unet.config))
    return LoadedModel(pipe, family, folder.name, folder_weights_hash(folder), "diffusers-folder",
                       {"path": str(folder), **defaults})
