"""Recognises what a single-file checkpoint is from its tensor names and shapes, and derives its configs.

Works on the header only (names and shapes), so it is fast and never loads weights. The family's bundled
config (resources/configs/<family>) is the starting point; sizes that the tensors show (channels, depths,
cross-attention width, text width) override it, so scaled-down models of a family load too. Head counts
follow the family's rule: SD 1.x has 8 heads per attention, SD 2.x / SDXL have 64-wide heads.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Callable, Optional

from core.errors import UnetOnlyCheckpointError, UnknownArchitectureError
from core.loading.reference_configs import FAMILIES

UNET = "model.diffusion_model."
VAE = "first_stage_model."
TEXT_PREFIX = {
    "sd15": ("cond_stage_model.transformer.", None),
    "sd2": ("cond_stage_model.model.", None),
    "sdxl": ("conditioner.embedders.0.transformer.", "conditioner.embedders.1.model."),
}
FAMILY_LABEL = {"sd15": "Stable Diffusion 1.x", "sd2": "Stable Diffusion 2.x", "sdxl": "Stable Diffusion XL"}
EXPECTED = ("a full Stable Diffusion checkpoint (SD 1.x, SD 2.x or SDXL) in the original single-file layout: "
            "UNet under 'model.diffusion_model.', VAE under 'first_stage_model.', text encoder(s) under "
            "'cond_stage_model.' or 'conditioner.embedders.'")


@dataclass
class Architecture:
    family: str
    unet: dict
    vae: dict
    text_encoder: dict
    text_encoder_2: Optional[dict] = None
    notes: list = field(default_factory=list)

    @property
    def label(self) -> str:
        return FAMILY_LABEL[self.family]


def _has_prefix(names, prefix: str) -> bool:
    return any(n.startswith(prefix) for n in names)


def _summary(names) -> str:
    prefixes: dict[str, int] = {}
    for n in names:
        head = ".".join(n.split(".")[:2])
        prefixes[head] = prefixes.get(head, 0) + 1
    top = sorted(prefixes.items(), key=lambda kv: -kv[1])[:5]
    return f"{len(names)} tensors; most common prefixes: " + ", ".join(f"{p} ({c})" for p, c in top)


def classify(names: list[str]) -> str:
    """The family, or a specific error for what the file is instead."""
    has_unet = _has_prefix(names, UNET)
    has_vae = _has_prefix(names, VAE)
    if _has_prefix(names, "conditioner.embedders.1.model."):
        family = "sdxl"
    elif _has_prefix(names, "cond_stage_model.model."):
        family = "sd2"
    elif _has_prefix(names, "cond_stage_model.transformer."):
        family = "sd15"
    else:
        family = None
    if family and has_unet and has_vae:
        return family
    if any(n.startswith(("lora_unet_", "lora_te", "lora_")) or ".lora_down." in n or ".lora_A." in n for n in names):
        raise UnknownArchitectureError(
            f"This file is a LoRA (found {_summary(names)}), not a model checkpoint. Open the base checkpoint "
            "it was trained for; LoRAs are not supported yet."
        )
    unet_only = (has_unet and not has_vae) or _has_prefix(names, "input_blocks.") or _has_prefix(names, "down_blocks.0.resnets.")
    if unet_only and not family:
        raise UnetOnlyCheckpointError(
            f"This file holds only a UNet ({_summary(names)}); HeadRoom needs a full checkpoint with the VAE and "
            "text encoder(s) as well. Use the full model file (usually 2-7 GB), or a diffusers folder whose unet/ "
            "holds this file."
        )
    if family and not (has_unet and has_vae):
        missing = [part for part, ok in (("UNet", has_unet), ("VAE", has_vae)) if not ok]
        raise UnknownArchitectureError(
            f"This {FAMILY_LABEL[family]} file lacks its {' and '.join(missing)} ({_summary(names)}). "
            f"Expected {EXPECTED}."
        )
    if _has_prefix(names, "encoder.down.") or _has_prefix(names, "decoder.up."):
        raise UnknownArchitectureError(f"This file is a VAE only ({_summary(names)}). Expected {EXPECTED}.")
    raise UnknownArchitectureError(f"Unrecognised checkpoint: found {_summary(names)}. Expected {EXPECTED}.")


def _indices(names, pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for n in names if (m := rx.match(n))})


def _derive_unet(family: str, names, shape: Callable[[str], tuple], text_embeds_dim: Optional[int]) -> dict:
    config = copy.deepcopy(FAMILIES[family]["unet"])
    op_blocks = _indices(names, re.escape(UNET) + r"input_blocks\.(\d+)\.0\.op\.weight")
    per = op_blocks[0] - 1 if op_blocks else config["layers_per_block"]
    n_blocks = len(op_blocks) + 1
    channels, down_types, up_types, depths = [], [], [], []
    for i in range(n_blocks):
        first = f"{UNET}input_blocks.{(per + 1) * i + 1}"
        channels.append(shape(f"{first}.0.out_layers.3.weight")[0])
        tb = _indices(names, re.escape(f"{first}.1.transformer_blocks.") + r"(\d+)\.")
        depths.append(len(tb) or 1)
        down_types.append("CrossAttnDownBlock2D" if tb else "DownBlock2D")
    for i in range(n_blocks):
        first = f"{UNET}output_blocks.{(per + 1) * i}"
        up_types.append("CrossAttnUpBlock2D" if f"{first}.1.proj_in.weight" in names else "UpBlock2D")
    to_k = next(n for n in names if n.startswith(UNET) and n.endswith("attn2.to_k.weight"))
    proj_in = next(n for n in names if n.startswith(UNET) and n.endswith("proj_in.weight"))
    config.update(
        layers_per_block=per, block_out_channels=channels, down_block_types=down_types, up_block_types=up_types,
        cross_attention_dim=shape(to_k)[1], in_channels=shape(f"{UNET}input_blocks.0.0.weight")[1],
        out_channels=shape(f"{UNET}out.2.weight")[0],
    )
    if len(shape(proj_in)) == 2:
        config["use_linear_projection"] = True
    if family == "sd15":
        config["attention_head_dim"] = 8
    else:
        config["attention_head_dim"] = [max(1, c // 64) for c in channels]
    if family == "sdxl":
        config["transformer_layers_per_block"] = depths
        label_in = shape(f"{UNET}label_emb.0.0.weight")[1]
        config["projection_class_embeddings_input_dim"] = label_in
        if text_embeds_dim:
            config["addition_time_embed_dim"] = (label_in - text_embeds_dim) // 6
    return config


def _derive_vae(family: str, names, shape) -> dict:
    config = copy.deepcopy(FAMILIES[family]["vae"])
    downs = _indices(names, re.escape(VAE) + r"encoder\.down\.(\d+)\.")
    per = len(_indices(names, re.escape(f"{VAE}encoder.down.0.block.") + r"(\d+)\."))
    channels = [shape(f"{VAE}encoder.down.{i}.block.{per - 1}.conv2.weight")[0] for i in downs]
    config.update(
        block_out_channels=channels, layers_per_block=per,
        down_block_types=["DownEncoderBlock2D"] * len(channels), up_block_types=["UpDecoderBlock2D"] * len(channels),
        latent_channels=shape(f"{VAE}post_quant_conv.weight")[0],
    )
    return config


def _derive_hf_clip(base: dict, prefix: str, names, shape) -> dict:
    config = copy.deepcopy(base)
    emb = shape(f"{prefix}text_model.embeddings.token_embedding.weight")
    layers = _indices(names, re.escape(f"{prefix}text_model.encoder.layers.") + r"(\d+)\.")
    config.update(
        vocab_size=emb[0], hidden_size=emb[1], num_hidden_layers=len(layers), num_attention_heads=max(1, emb[1] // 64),
        intermediate_size=shape(f"{prefix}text_model.encoder.layers.0.mlp.fc1.weight")[0],
        max_position_embeddings=shape(f"{prefix}text_model.embeddings.position_embedding.weight")[0],
    )
    return config


def _derive_open_clip(base: dict, prefix: str, names, shape, drop_last: bool) -> dict:
    config = copy.deepcopy(base)
    emb = shape(f"{prefix}token_embedding.weight")
    layers = len(_indices(names, re.escape(f"{prefix}transformer.resblocks.") + r"(\d+)\."))
    config.update(
        vocab_size=emb[0], hidden_size=emb[1], num_attention_heads=max(1, emb[1] // 64),
        num_hidden_layers=layers - 1 if drop_last and layers == base["num_hidden_layers"] + 1 else layers,
        intermediate_size=shape(f"{prefix}transformer.resblocks.0.mlp.c_fc.weight")[0],
        max_position_embeddings=shape(f"{prefix}positional_embedding")[0],
    )
    if f"{prefix}text_projection" in names:
        config["projection_dim"] = shape(f"{prefix}text_projection")[1]
    return config


def detect_architecture(names: list[str], shape: Callable[[str], tuple]) -> Architecture:
    family = classify(names)
    name_set = set(names)
    spec = FAMILIES[family]
    first, second = TEXT_PREFIX[family]
    try:
        if family == "sd2":
            text = _derive_open_clip(spec["text_encoder"], first, name_set, shape, drop_last=True)
            text_2 = None
        else:
            text = _derive_hf_clip(spec["text_encoder"], first, name_set, shape)
            text_2 = _derive_open_clip(spec["text_encoder_2"], second, name_set, shape, drop_last=False) if second else None
        unet = _derive_unet(family, name_set, shape, text_2["projection_dim"] if text_2 else None)
        vae = _derive_vae(family, name_set, shape)
    except (KeyError, StopIteration, IndexError) as exc:
        raise UnknownArchitectureError(
            f"This looks like a {FAMILY_LABEL[family]} checkpoint but a tensor the architecture needs is missing "
            f"({exc}); found {_summary(names)}. The file may be from an unsupported variant (inpainting, "
            "refiner, or a pruned/merged file with renamed keys)."
        ) from None
    arch = Architecture(family, unet, vae, text, text_2)
    if family == "sd2":
        arch.notes.append("SD 2.x loads as v-prediction (SD 2.1 768); 512-px SD 2 base models use epsilon.")
    return arch
