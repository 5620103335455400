"""Seeded UNet inputs as keyword dicts, on top of the lead's `core.testing.tiny_models` (tests and benches)."""

from __future__ import annotations


def tiny_unet(family: str, seed: int = 0):
    from core.testing.tiny_models import tiny_unet as _tiny_unet

    return _tiny_unet(family, seed=seed)


def tiny_inputs(unet, batch: int = 1, seed: int = 0, tokens: int = 7, size: int | None = 8) -> dict:
    """UNet keyword arguments matching `unet`'s config (with SDXL's text_time conditioning), in its dtype.
    `size` crops the latent (any multiple of 8 works for these UNets) to keep CPU tests fast."""
    from core.testing.tiny_models import unet_inputs

    sample, timestep, context, extra = unet_inputs(unet, batch=batch, seed=seed, tokens=tokens)
    if size is not None:
        sample = sample[..., :size, :size].contiguous()
    dtype = next(unet.parameters()).dtype
    kw = dict(sample=sample.to(dtype), timestep=timestep.reshape(1).expand(batch).clone(),
              encoder_hidden_states=context.to(dtype))
    if "added_cond_kwargs" in extra:
        kw["added_cond_kwargs"] = {k: v.to(dtype) for k, v in extra["added_cond_kwargs"].items()}
    return kw


def builtin_unet_inputs(unet, batch: int = 1, seed: int = 0, tokens: int = 7) -> dict:
    import torch

    cfg = unet.config
    g = torch.Generator().manual_seed(seed)
    size = cfg.sample_size
    return dict(sample=torch.randn(batch, cfg.in_channels, size, size, generator=g),
                timestep=torch.tensor([400] * batch),
                encoder_hidden_states=torch.randn(batch, tokens, cfg.cross_attention_dim, generator=g))
