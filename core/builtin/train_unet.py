"""Stage (b): UNet and text encoder trained jointly on cached latents of seeded scenes.

Epsilon prediction with min-SNR weighting, 10% caption dropout (the empty caption, for classifier-free
guidance), a fresh training-split phrasing for every sample, an EMA of both models (what gets shipped).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time

log = logging.getLogger(__name__)


def encode_latents(vae, images, chunk: int = 128):
    """Posterior mean and std of each image's latent (unscaled)."""
    import torch

    means, stds = [], []
    with torch.no_grad():
        for part in images.split(chunk):
            dist = vae.encode(part).latent_dist
            means.append(dist.mean)
            stds.append(dist.std)
    return torch.cat(means), torch.cat(stds)


def prepare_text_encoder(text_encoder, seed: int = 0, freeze_tokens: bool = True, position_std: float = 0.0,
                         layer_output_scale: float = 0.0):
    """Starts the text encoder as a bag of tokens: every transformer layer is the identity (zeroed output
    projections), position embeddings start at zero and token embeddings are fixed random vectors (frozen).

    Each token's hidden state is then its own vector, so the UNet's cross-attention can pick the colour word and
    the shape word apart from the first step, and a colour x shape pair never seen in training is still two
    familiar tokens. The layers and the position embeddings learn from there (word order, which colour goes
    with which shape in two-object prompts) without blurring the tokens' identities at the start.
    """
    import torch

    model = getattr(text_encoder, "text_model", text_encoder)  # transformers < 5 nests the transformer
    with torch.no_grad():
        embeddings = model.embeddings
        embeddings.token_embedding.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(seed))
        embeddings.token_embedding.requires_grad_(not freeze_tokens)
        position = embeddings.position_embedding.weight
        position.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(seed + 1)).mul_(position_std)
        for layer in model.encoder.layers:
            for linear in (layer.self_attn.out_proj, layer.mlp.fc2):
                linear.weight.mul_(layer_output_scale)
                linear.bias.zero_()
    return text_encoder


class EMA:
    def __init__(self, model, decay: float = 0.999):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay

    def update(self, model, step: int):
        import torch

        decay = min(self.decay, (1 + step) / (10 + step))
        pairs = [(e, p) for e, p in zip(self.model.parameters(), model.parameters()) if p.requires_grad]
        with torch.no_grad():  # one fused call: a per-tensor loop is hundreds of kernel launches per step on a GPU
            torch._foreach_lerp_([e for e, _ in pairs], [p for _, p in pairs], 1 - decay)


def train_unet_text(unet, text_encoder, tokenizer, scheduler, latents_mean, latents_std, scenes, scaling_factor: float,
                    steps: int, seed: int, batch: int = 32, lr: float = 1e-3, caption_dropout: float = 0.1,
                    snr_gamma: float = 5.0, warmup: int = 50, log_every: int = 50, checkpoint_every: int = 100,
                    checkpoint=None, start_step: int = 0, ema_state=None, opt_state=None, progress=None,
                    device: str = "cpu", text_lr_scale: float = 1.0, grounding_weight: float = 0.0):
    """Trains in place; returns (ema_unet, ema_text_encoder). `checkpoint(step, unet, text, ema_u, ema_t, opt)`
    is called every `checkpoint_every` steps and at the end. Batches are drawn on the CPU from seeded generators
    whatever the `device`, so a run on another device sees the same data, noise and timesteps.

    `grounding_weight` > 0 adds `attention_grounding.grounding_loss` (object words attend inside their object)."""
    import numpy as np
    import torch

    from core.builtin.attention_grounding import (
        GroundingTargets,
        grounding_loss,
        recording_cross_attention,
        scene_masks,
    )
    from core.builtin.train_data import CaptionTokens
    from core.shapes.captions import OBJECT_JOINER, random_object_phrases

    tokens = CaptionTokens(tokenizer)
    rng = np.random.default_rng([seed, start_step])
    gen = torch.Generator().manual_seed(seed * 1000003 + start_step)
    unet_params = [p for p in unet.parameters() if p.requires_grad]
    text_params = [p for p in text_encoder.parameters() if p.requires_grad]
    params = unet_params + text_params
    groups = [dict(params=unet_params, lr_scale=1.0), dict(params=text_params, lr_scale=text_lr_scale)]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, weight_decay=0.01)
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    ema_unet, ema_text = EMA(unet), EMA(text_encoder)
    if ema_state is not None:
        ema_unet.model.load_state_dict(ema_state[0])
        ema_text.model.load_state_dict(ema_state[1])
    alphas_cumprod = scheduler.alphas_cumprod.float()
    snr = (alphas_cumprod / (1 - alphas_cumprod)).to(device)
    unet.train()
    text_encoder.train()
    grounding = grounding_weight > 0
    if grounding:
        owners_of = GroundingTargets(tokenizer)
        masks = {side: m.to(device) for side, m in scene_masks(scenes).items()}
    n = latents_mean.shape[0]
    start = time.time()
    with recording_cross_attention(unet) if grounding else contextlib.nullcontext() as maps:
        for step in range(start_step, steps):
            idx = torch.from_numpy(rng.integers(0, n, size=batch))
            z0 = (latents_mean[idx] + latents_std[idx] * torch.randn(latents_mean[idx].shape, generator=gen)) * scaling_factor
            phrases = [
                [] if rng.random() < caption_dropout else random_object_phrases(scenes[int(i)], rng, split="train")
                for i in idx
            ]
            ids = tokens([OBJECT_JOINER.join(p) for p in phrases])
            t = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=gen)
            noise = torch.randn(z0.shape, generator=gen)
            zt = scheduler.add_noise(z0, noise, t)
            zt, t, noise, ids = zt.to(device), t.to(device), noise.to(device), ids.to(device)
            hidden = text_encoder(ids)[0]
            if grounding:
                maps.clear()
            pred = unet(zt, t, hidden).sample
            weight = torch.clamp(snr[t], max=snr_gamma) / snr[t]
            loss = ((pred - noise).pow(2).mean(dim=(1, 2, 3)) * weight).mean()
            if grounding:
                idx_device = idx.to(device)
                ground = grounding_loss(maps, owners_of(phrases).to(device), {s: m[idx_device] for s, m in masks.items()})
                loss = loss + grounding_weight * ground
            current_lr = lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * step / steps)))
            for group in opt.param_groups:
                group["lr"] = float(current_lr * group["lr_scale"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            ema_unet.update(unet, step)
            ema_text.update(text_encoder, step)
            if step % log_every == 0 or step == steps - 1:
                log.info("unet step %d/%d loss %.4f%s lr %.2e (%.0f s)", step, steps, loss.item(),
                         f" (grounding {ground.item():.3f})" if grounding else "", current_lr, time.time() - start)
            done = step + 1
            if checkpoint is not None and (done % checkpoint_every == 0 or done == steps):
                checkpoint(done, unet, text_encoder, ema_unet.model, ema_text.model, opt)
            if progress is not None:
                progress(done, steps)
    return ema_unet.model, ema_text.model
