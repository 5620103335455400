"""Stage (a): the VAE, trained on random crops of freshly drawn scenes (flat shapes are easy to reconstruct)."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


def train_vae(vae, steps: int, seed: int, batch: int = 16, crop: int = 32, lr: float = 2e-3, kl_weight: float = 1e-6,
              warmup: int = 50, log_every: int = 50, progress=None, device: str = "cpu"):
    import numpy as np
    import torch

    from core.builtin.train_data import scenes_and_images

    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr / warmup if warmup else lr, weight_decay=0.0)
    vae.train()
    start = time.time()
    for step in range(steps):
        _, images = scenes_and_images(batch, seed=int(rng.integers(2**31)))
        full = step >= steps - steps // 10  # the last tenth sees whole images
        if not full:
            x0, y0 = (int(v) for v in rng.integers(0, 64 - crop + 1, size=2) // 4 * 4)
            images = images[:, :, y0 : y0 + crop, x0 : x0 + crop]
        images = images.to(device)
        posterior = vae.encode(images).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen).to(device)
        recon = vae.decode(z).sample
        loss = (recon - images).abs().mean() + (recon - images).pow(2).mean() + kl_weight * posterior.kl().mean()
        _optimizer_step(opt, loss, lr, step, steps, warmup)
        if step % log_every == 0 or step == steps - 1:
            log.info("vae step %d/%d loss %.4f (%.0f s)", step, steps, loss.item(), time.time() - start)
        if progress is not None:
            progress(step + 1, steps)
    vae.eval()
    return vae


def latent_scaling_factor(vae, seed: int, n: int = 512, device: str = "cpu") -> float:
    """1 / std of the latent means of `n` scenes, so scaled latents have unit variance as diffusion expects."""
    import torch

    from core.builtin.train_data import scenes_and_images

    _, images = scenes_and_images(n, seed=seed)
    with torch.no_grad():
        means = torch.cat([vae.encode(chunk.to(device)).latent_dist.mean for chunk in images.split(128)])
    return float(1.0 / means.std())


def _optimizer_step(opt, loss, lr: float, step: int, steps: int, warmup: int = 0) -> None:
    """One update, then the (warm-up, then cosine) learning rate of the next step."""
    import numpy as np

    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    for group in opt.param_groups:
        ramp = min(1.0, (step + 2) / warmup) if warmup else 1.0
        group["lr"] = float(lr * ramp * 0.5 * (1 + np.cos(np.pi * (step + 1) / steps)))
