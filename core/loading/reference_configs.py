"""Source of the bundled diffusers configs in resources/configs/<family>/ (json only; no weights).

Run `python -m core.loading.reference_configs` to regenerate them. Values are those of the public
SD 1.5, SD 2.1 (768, v-prediction) and SDXL base 1.0 repositories.
"""

from __future__ import annotations

import json

DIFFUSERS_VERSION = "0.42.1"
_BETAS = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)

SD15_UNET = dict(
    act_fn="silu", attention_head_dim=8, block_out_channels=[320, 640, 1280, 1280], center_input_sample=False,
    cross_attention_dim=768,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    downsample_padding=1, flip_sin_to_cos=True, freq_shift=0, in_channels=4, layers_per_block=2,
    mid_block_scale_factor=1, norm_eps=1e-05, norm_num_groups=32, out_channels=4, sample_size=64,
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
)
SD2_UNET = dict(SD15_UNET, attention_head_dim=[5, 10, 20, 20], cross_attention_dim=1024, sample_size=96,
                use_linear_projection=True, upcast_attention=True)
SDXL_UNET = dict(
    act_fn="silu", addition_embed_type="text_time", addition_embed_type_num_heads=64, addition_time_embed_dim=256,
    attention_head_dim=[5, 10, 20], block_out_channels=[320, 640, 1280], center_input_sample=False,
    cross_attention_dim=2048, down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    downsample_padding=1, flip_sin_to_cos=True, freq_shift=0, in_channels=4, layers_per_block=2,
    mid_block_scale_factor=1, norm_eps=1e-05, norm_num_groups=32, out_channels=4,
    projection_class_embeddings_input_dim=2816, sample_size=128, transformer_layers_per_block=[1, 2, 10],
    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], use_linear_projection=True,
)
SD_VAE = dict(
    act_fn="silu", block_out_channels=[128, 256, 512, 512],
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, norm_num_groups=32, sample_size=512,
    scaling_factor=0.18215,
)
SDXL_VAE = dict(SD_VAE, sample_size=1024, scaling_factor=0.13025, force_upcast=True)
CLIP_L = dict(
    architectures=["CLIPTextModel"], model_type="clip_text_model", vocab_size=49408, hidden_size=768,
    intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, max_position_embeddings=77,
    hidden_act="quick_gelu", projection_dim=768, layer_norm_eps=1e-05, bos_token_id=0, eos_token_id=2,
    pad_token_id=1, initializer_factor=1.0, initializer_range=0.02, attention_dropout=0.0, dropout=0.0,
)
OPENCLIP_H = dict(CLIP_L, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
                  hidden_act="gelu", projection_dim=512)
OPENCLIP_BIGG = dict(CLIP_L, architectures=["CLIPTextModelWithProjection"], hidden_size=1280, intermediate_size=5120,
                     num_hidden_layers=32, num_attention_heads=20, hidden_act="gelu", projection_dim=1280)

FAMILIES = {
    "sd15": dict(
        pipeline="StableDiffusionPipeline", unet=SD15_UNET, vae=SD_VAE, text_encoder=CLIP_L,
        scheduler=("PNDMScheduler", dict(_BETAS, skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1,
                                          prediction_type="epsilon")),
    ),
    "sd2": dict(
        pipeline="StableDiffusionPipeline", unet=SD2_UNET, vae=SD_VAE, text_encoder=OPENCLIP_H,
        scheduler=("DDIMScheduler", dict(_BETAS, set_alpha_to_one=False, steps_offset=1, clip_sample=False,
                                          prediction_type="v_prediction")),
    ),
    "sdxl": dict(
        pipeline="StableDiffusionXLPipeline", unet=SDXL_UNET, vae=SDXL_VAE, text_encoder=CLIP_L,
        text_encoder_2=OPENCLIP_BIGG,
        scheduler=("EulerDiscreteScheduler", dict(_BETAS, steps_offset=1, timestep_spacing="leading",
                                                   interpolation_type="linear", prediction_type="epsilon",
                                                   use_karras_sigmas=False)),
    ),
}


def model_index(family: str) -> dict:
    spec = FAMILIES[family]
    index = {
        "_class_name": spec["pipeline"],
        "_diffusers_version": DIFFUSERS_VERSION,
        "scheduler": ["diffusers", spec["scheduler"][0]],
        "text_encoder": ["transformers", spec["text_encoder"]["architectures"][0]],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    if "text_encoder_2" in spec:
        index["text_encoder_2"] = ["transformers", "CLIPTextModelWithProjection"]
        index["tokenizer_2"] = ["transformers", "CLIPTokenizer"]
        index["force_zeros_for_empty_prompt"] = True
    else:
        index.update(safety_checker=[None, None], feature_extractor=[None, None], requires_safety_checker=False)
    return index


def write_family_folder(family: str, folder, unet=None, vae=None, text_encoder=None, text_encoder_2=None) -> None:
    """Writes a diffusers config folder; the optional dicts replace the family's component configs."""
    from pathlib import Path

    spec = FAMILIES[family]
    folder = Path(folder)
    files = {
        "model_index.json": model_index(family),
        "unet/config.json": {"_class_name": "UNet2DConditionModel", "_diffusers_version": DIFFUSERS_VERSION,
                             **(unet or spec["unet"])},
        "vae/config.json": {"_class_name": "AutoencoderKL", "_diffusers_version": DIFFUSERS_VERSION,
                            **(vae or spec["vae"])},
        "text_encoder/config.json": text_encoder or spec["text_encoder"],
        "scheduler/scheduler_config.json": {"_class_name": spec["scheduler"][0],
                                            "_diffusers_version": DIFFUSERS_VERSION, **spec["scheduler"][1]},
    }
    if "text_encoder_2" in spec:
        files["text_encoder_2/config.json"] = text_encoder_2 or spec["text_encoder_2"]
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    from core.resources import resources_root

    for fam in FAMILIES:
        write_family_folder(fam, resources_root() / "configs" / fam)
    print("wrote", resources_root() / "configs")
