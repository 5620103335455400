"""Scaled-down, architecture-exact models of SD 1.5, SD 2.x and SDXL, and full-size UNets on the meta device.

"Architecture-exact" means: the same block types, layers per block, transformer depths pattern,
projection style (conv vs linear proj_in), conditioning (SDXL's text_time) and the family's head rule
(SD 1.x: 8 heads per attention; SD 2.x / SDXL: 64-wide heads), with fewer channels.
"""

from __future__ import annotations

import copy
import json

from core.loading.reference_configs import CLIP_L, FAMILIES, OPENCLIP_BIGG, OPENCLIP_H, SD_VAE, SDXL_VAE

FAMILY_NAMES = ("sd15", "sd2", "sdxl")

TINY_UNET = {
    "sd15": dict(block_out_channels=[32, 64, 64, 64], attention_head_dim=8, cross_attention_dim=64, sample_size=16),
    "sd2": dict(block_out_channels=[64, 128, 128, 128], attention_head_dim=[1, 2, 2, 2], cross_attention_dim=64,
                sample_size=16),
    "sdxl": dict(block_out_channels=[64, 128, 192], attention_head_dim=[1, 2, 3], cross_attention_dim=192,
                 transformer_layers_per_block=[1, 1, 2], sample_size=16,
                 addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 128),
}
# SDXL's UNet is conditioned on [CLIP-L hidden (64) ++ bigG hidden (128)] = 192 and on bigG's pooled projection (128).
# Text encoders keep the family's 64-wide heads; GroupNorm keeps 32 groups, as in the full models.
TINY_TEXT = {
    "sd15": dict(CLIP_L, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=1,
                 projection_dim=64),
    "sd2": dict(OPENCLIP_H, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=1,
                projection_dim=64),
    "sdxl": dict(CLIP_L, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=1,
                 projection_dim=64),
    "sdxl_2": dict(OPENCLIP_BIGG, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                   projection_dim=128),
}
TINY_VAE = dict(block_out_channels=[32, 32], down_block_types=["DownEncoderBlock2D"] * 2,
                up_block_types=["UpDecoderBlock2D"] * 2, layers_per_block=1, sample_size=32)


def unet_config(family: str, tiny: bool = False) -> dict:
    config = copy.deepcopy(FAMILIES[family]["unet"])
    if tiny:
        config.update(copy.deepcopy(TINY_UNET[family]))
    return config


def _seeded(seed: int, build):
    import torch

    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return build()
    finally:
        torch.random.set_rng_state(state)


def tiny_unet(family: str, seed: int = 0):
    from core.offline import import_diffusers

    diffusers = import_diffusers()
    return _seeded(seed, lambda: diffusers.UNet2DConditionModel(**unet_config(family, tiny=True)).eval())


def full_unet(family: str, device: str = "meta", seed: int = 0):
    """The full-size UNet of a family: on "meta" for structure and counts; on "cpu" with random weights."""
    import torch

    from core.offline import import_diffusers

    diffusers = import_diffusers()
    if device == "meta":
        with torch.device("meta"):
            return diffusers.UNet2DConditionModel(**unet_config(family))
    return _seeded(seed, lambda: diffusers.UNet2DConditionModel(**unet_config(family)).to(device).eval())


def unet_inputs(unet, batch: int = 2, seed: int = 0, tokens: int = 77):
    """Random (sample, timestep, encoder_hidden_states, added_cond_kwargs) matching a UNet's config."""
    import torch

    cfg = unet.config
    gen = torch.Generator().manual_seed(seed)
    size = cfg.sample_size
    sample = torch.randn(batch, cfg.in_channels, size, size, generator=gen)
    context = torch.randn(batch, tokens, cfg.cross_attention_dim, generator=gen)
    kwargs = {}
    if cfg.addition_embed_type == "text_time":
        text_embeds_dim = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
        kwargs["added_cond_kwargs"] = {
            "text_embeds": torch.randn(batch, text_embeds_dim, generator=gen),
            "time_ids": torch.tensor([[size * 8, size * 8, 0, 0, size * 8, size * 8]] * batch, dtype=torch.float32),
        }
    timestep = torch.tensor(500)
    return sample, timestep, context, kwargs


def tiny_pipeline(family: str, seed: int = 0):
    """A whole seeded pipeline of the family with tiny components and the real CLIP tokenizer(s)."""
    from core.offline import import_diffusers, import_transformers
    from core.resources import resource_path

    diffusers = import_diffusers()
    transformers = import_transformers()
    vae_config = dict(SDXL_VAE if family == "sdxl" else SD_VAE, **TINY_VAE)

    def build():
        unet = diffusers.UNet2DConditionModel(**unet_config(family, tiny=True))
        vae = diffusers.AutoencoderKL(**vae_config)
        text = transformers.CLIPTextModel(transformers.CLIPTextConfig(**_text_config(TINY_TEXT[family])))
        extra = {}
        if family == "sdxl":
            extra["text_encoder_2"] = transformers.CLIPTextModelWithProjection(
                transformers.CLIPTextConfig(**_text_config(TINY_TEXT["sdxl_2"]))
            )
        return unet, vae, text, extra

    unet, vae, text, extra = _seeded(seed, build)
    tokenizer = transformers.CLIPTokenizer.from_pretrained(str(resource_path("tokenizers", "clip")))
    scheduler_name, scheduler_config = FAMILIES[family]["scheduler"]
    scheduler = getattr(diffusers, scheduler_name)(**scheduler_config)
    if family == "sdxl":
        tokenizer_2 = transformers.CLIPTokenizer.from_pretrained(str(resource_path("tokenizers", "clip_pad_bang")))
        pipe = diffusers.StableDiffusionXLPipeline(
            vae=vae, text_encoder=text, text_encoder_2=extra["text_encoder_2"], tokenizer=tokenizer,
            tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler,
        )
    else:
        pipe = diffusers.StableDiffusionPipeline(
            vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
            safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _text_config(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in ("architectures", "model_type")}


def tiny_config_json(family: str) -> str:
    return json.dumps(unet_config(family, tiny=True), indent=2)
