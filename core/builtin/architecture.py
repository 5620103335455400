"""Architecture of the built-in `builtin:shapes` model: a StableDiffusionPipeline small enough for a CPU.

64x64 RGB images, a VAE with 4x downsampling (16x16x4 latents), a UNet with cross-attention at three
resolutions (16, 8, 4) and several heads per attention module, a small CLIPTextModel that uses the
standard CLIP BPE tokenizer (resources/tokenizers/clip).
"""

from __future__ import annotations

IMAGE_SIZE = 64
LATENT_SIZE = 16
TEXT_WIDTH = 64

UNET_CONFIG = dict(
    sample_size=LATENT_SIZE,
    in_channels=4,
    out_channels=4,
    layers_per_block=1,
    block_out_channels=(32, 64, 64),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    # diffusers' historical quirk: `attention_head_dim` is the number of heads here.
    attention_head_dim=(4, 4, 4),
    cross_attention_dim=TEXT_WIDTH,
    norm_num_groups=16,
)

VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(16, 32, 32),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=8,
    sample_size=IMAGE_SIZE,
)

TEXT_CONFIG = dict(
    vocab_size=49408,
    hidden_size=TEXT_WIDTH,
    intermediate_size=4 * TEXT_WIDTH,
    num_hidden_layers=3,
    num_attention_heads=4,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    projection_dim=TEXT_WIDTH,
    bos_token_id=49406,
    eos_token_id=49407,
    pad_token_id=49407,
)

# DDPM's linear betas, not SD's scaled_linear: at 16x16 latents scaled_linear leaves 7 % of the image's signal at
# the last timestep, and the noise's own spatial mean (1/16) is as large, so sampling reads the noise's mean as
# the background colour (pink, yellow or white backgrounds). Linear betas end at 0.6 % signal.
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.0001,
    beta_end=0.02,
    beta_schedule="linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    prediction_type="epsilon",
)


def build_components(seed: int = 0):
    """Randomly initialised, seeded components (the stand-in before training, and the start of training)."""
    import torch

    from core.offline import import_diffusers, import_transformers

    diffusers = import_diffusers()
    transformers = import_transformers()
    from core.resources import resource_path

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        unet = diffusers.UNet2DConditionModel(**UNET_CONFIG)
        vae = diffusers.AutoencoderKL(**VAE_CONFIG)
        text_encoder = transformers.CLIPTextModel(transformers.CLIPTextConfig(**TEXT_CONFIG))
    finally:
        torch.random.set_rng_state(generator_state)
    tokenizer = transformers.CLIPTokenizer.from_pretrained(str(resource_path("tokenizers", "clip")))
    scheduler = diffusers.DDIMScheduler(**SCHEDULER_CONFIG)
    return dict(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)


def build_pipeline(seed: int = 0):
    diffusers = __import__("core.offline", fromlist=["import_diffusers"]).import_diffusers()
    components = build_components(seed)
    pipe = diffusers.StableDiffusionPipeline(
        **components, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
