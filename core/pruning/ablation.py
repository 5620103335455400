"""Ablation and Taylor head importance (Michel et al. 2019), on a few denoiser inputs.

A gate per head multiplies the head's slice before `to_out[0]`.
- exact ("ablation"): relative change of the UNet output when one head's gate is set to 0 (one forward per head).
- "taylor": first-order estimate of the same change, ||d out / d gate_h||, from a few backward passes with
  random projections (Hutchinson: E_r[(r . J_h)^2] = ||J_h||^2), all heads at once.
"""

from __future__ import annotations

import numpy as np

from core.progress import ProgressSink
from core.pruning.masks import head_gates
from core.pruning.structure import attention_modules


def _batched(inputs: list[dict]) -> dict:
    import torch

    if len(inputs) == 1:
        return dict(inputs[0])
    out = {}
    for key in inputs[0]:
        vals = [inp[key] for inp in inputs]
        if isinstance(vals[0], dict):
            out[key] = {k: torch.cat([v[k] for v in vals]) for k in vals[0]}
        elif hasattr(vals[0], "dim"):
            if vals[0].dim() == 0:
                vals = [v.reshape(1).expand(inp["sample"].shape[0]) for v, inp in zip(vals, inputs)]
            out[key] = torch.cat(vals)
        else:
            out[key] = vals[0]
    return out


def _forward(unet, batch):
    return unet(**batch, return_dict=False)[0]


def ablation_scores(unet, inputs: list[dict], mode: str = "exact", progress: ProgressSink | None = None,
                    probes: int = 4, seed: int = 0, modules: list[str] | None = None) -> dict[str, np.ndarray]:
    import torch

    progress = progress or ProgressSink()
    batch = _batched(inputs)
    attns = [(n, m) for n, m in attention_modules(unet) if modules is None or n in modules]
    param = next(unet.parameters())
    scores: dict[str, np.ndarray] = {}
    if mode == "exact":
        total = sum(m.heads for _, m in attns)
        done = 0
        with torch.no_grad():
            base = _forward(unet, batch)
            base_norm = base.flatten(1).norm(dim=1).clamp_min(1e-12)
            for name, attn in attns:
                vals = np.zeros(attn.heads)
                for h in range(attn.heads):
                    gate = torch.ones(attn.heads, device=param.device, dtype=param.dtype)
                    gate[h] = 0
                    with head_gates(unet, {name: gate}):
                        out = _forward(unet, batch)
                    vals[h] = float(((out - base).flatten(1).norm(dim=1) / base_norm).mean())
                    done += 1
                    progress.report(done, total, f"ablating {name} head {h}")
                scores[name] = vals
        return scores
    if mode != "taylor":
        raise ValueError(f"unknown ablation mode {mode!r}")
    flags = [p.requires_grad for p in unet.parameters()]
    for p in unet.parameters():
        p.requires_grad_(False)
    gates = {n: torch.ones(m.heads, device=param.device, dtype=torch.float32, requires_grad=True) for n, m in attns}
    acc = {n: torch.zeros(m.heads, dtype=torch.float64) for n, m in attns}
    gen = torch.Generator().manual_seed(seed)
    try:
        with torch.enable_grad(), head_gates(unet, gates):
            out = _forward(unet, batch)
            norm = out.detach().flatten(1).norm(dim=1).mean().clamp_min(1e-12)
            for k in range(probes):
                r = torch.randn(out.shape, generator=gen).to(out.device, out.dtype)
                grads = torch.autograd.grad((out * r).sum(), list(gates.values()), retain_graph=k < probes - 1)
                for (n, _), g in zip(attns, grads):
                    acc[n] += g.detach().double().cpu() ** 2
                progress.report(k + 1, probes, "taylor probes")
    finally:
        for p, f in zip(unet.parameters(), flags):
            p.requires_grad_(f)
    batch_size = out.shape[0]
    for n, _ in attns:
        scores[n] = (torch.sqrt(acc[n] / probes / batch_size) / float(norm)).numpy()
    return scores


def unet_inputs_from_pipe(pipe, prompts: list[str], seeds: list[int], timesteps=(800, 500, 200)) -> list[dict]:
    """Noisy latents (seeded) at a few timesteps, conditioned on the prompts' text embeddings."""
    import torch

    from core.pruning.heal import prompt_conditioning

    unet = pipe.unet
    device, dtype = unet.device, unet.dtype
    size = unet.config.sample_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    inputs = []
    with torch.no_grad():
        for i, prompt in enumerate(prompts):
            cond = prompt_conditioning(pipe, prompt)
            for seed in seeds:
                g = torch.Generator().manual_seed(int(seed))
                t = timesteps[(i + int(seed)) % len(timesteps)]
                sample = torch.randn((1, unet.config.in_channels, size, size), generator=g).to(device, dtype)
                inputs.append(dict(sample=sample, timestep=torch.tensor([t], device=device), **cond))
    return inputs
