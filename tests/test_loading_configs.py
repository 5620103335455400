"""Bundled configs: full-size parameter counts, and detection from tensor names/shapes reproduces them."""

import json

import pytest
import torch

from core.loading.detect import detect_architecture
from core.loading.reference_configs import FAMILIES
from core.resources import resource_path
from core.testing.tiny_models import full_unet


@pytest.mark.parametrize("family, params, modules, heads", [
    ("sd15", 859_520_964, 32, 256),
    ("sdxl", 2_567_463_684, 140, 2_600),
])
def test_full_size_unets_from_bundled_configs(family, params, modules, heads):
    from core.loading.inspect import attention_modules

    unet = full_unet(family, device="meta")
    assert sum(p.numel() for p in unet.parameters()) == params
    infos = attention_modules(unet)
    assert len(infos) == modules
    assert sum(i.heads for i in infos) == heads


def test_bundled_config_files_match_their_source():
    for family, spec in FAMILIES.items():
        on_disk = json.loads(resource_path("configs", family, "unet", "config.json").read_text())
        for key, value in spec["unet"].items():
            assert on_disk[key] == value, (family, key)


def _meta_pipeline_state(family):
    """Names and shapes of a full-size checkpoint in the original layout, built on the meta device."""
    from core.loading.reference_configs import FAMILIES
    from core.offline import import_diffusers, import_transformers
    from core.testing.ldm_export import clip_to_ldm, open_clip_to_ldm, unet_to_ldm, vae_to_ldm

    diffusers, transformers = import_diffusers(), import_transformers()
    spec = FAMILIES[family]
    strip = lambda c: {k: v for k, v in c.items() if k not in ("architectures", "model_type")}  # noqa: E731
    with torch.device("meta"):
        unet = diffusers.UNet2DConditionModel(**spec["unet"])
        vae = diffusers.AutoencoderKL(**spec["vae"])
        text = transformers.CLIPTextModel(transformers.CLIPTextConfig(**strip(spec["text_encoder"])))
        state = {**unet_to_ldm(unet), **vae_to_ldm(vae)}
        if family == "sd15":
            state.update(clip_to_ldm(text, "cond_stage_model.transformer."))
        elif family == "sd2":
            state.update(open_clip_to_ldm(text, "cond_stage_model.model."))
        else:
            text_2 = transformers.CLIPTextModelWithProjection(transformers.CLIPTextConfig(**strip(spec["text_encoder_2"])))
            state.update(clip_to_ldm(text, "conditioner.embedders.0.transformer."))
            state.update(open_clip_to_ldm(text_2, "conditioner.embedders.1.model."))
    return {k: tuple(v.shape) for k, v in state.items()}


@pytest.mark.parametrize("family", ["sd15", "sd2", "sdxl"])
def test_detection_of_full_size_checkpoint_derives_the_bundled_config(family):
    shapes = _meta_pipeline_state(family)
    arch = detect_architecture(list(shapes), shapes.__getitem__)
    assert arch.family == family
    expected = FAMILIES[family]["unet"]
    for key in ("block_out_channels", "layers_per_block", "cross_attention_dim", "down_block_types", "up_block_types"):
        assert arch.unet[key] == expected[key], key
    heads = arch.unet["attention_head_dim"]
    assert heads == expected["attention_head_dim"] or (
        family == "sdxl" and heads[1:] == expected["attention_head_dim"][1:]
    )
    assert arch.vae["block_out_channels"] == FAMILIES[family]["vae"]["block_out_channels"]
    assert arch.text_encoder["hidden_size"] == FAMILIES[family]["text_encoder"]["hidden_size"]
    assert arch.text_encoder["num_hidden_layers"] == FAMILIES[family]["text_encoder"]["num_hidden_layers"]
    if family == "sdxl":
        assert arch.unet["transformer_layers_per_block"] == expected["transformer_layers_per_block"]
        assert arch.unet["addition_time_embed_dim"] == expected["addition_time_embed_dim"]
        assert arch.text_encoder_2["projection_dim"] == 1280
