"""Healing: a short distillation of a reduced UNet towards its base, on the prompts the user profiled.

A small dense model has few idle heads (builtin:shapes: removing 30 % of its 80 heads by the best score costs
about 9 points of checker accuracy). A few hundred steps in which the reduced UNet learns to predict what the
base predicts recover most of it. The student sees latents the base itself generated for the profile's
prompts, noised at random timesteps, under the prompt and under the empty prompt (so classifier-free guidance,
which uses both, keeps working). Everything is seeded: the same base, prompts and `HealConfig` give the same
weights, which is how a healed fragment is rebuilt from its base and manifest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from core.errors import HeadRoomError
from core.progress import as_sink


@dataclass(frozen=True)
class HealConfig:
    steps: int = 0  # 0: no healing
    lr: float = 1e-4
    batch: int = 16
    seed: int = 0
    images_per_prompt: int = 4
    sampling_steps: int = 20
    uncond_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"Healing steps must be 0 (off) or more, not {self.steps}.")
        if not self.lr > 0:
            raise ValueError(f"The healing learning rate must be positive, not {self.lr}.")
        if self.batch < 1 or self.images_per_prompt < 1 or self.sampling_steps < 1:
            raise ValueError("Healing batch, images per prompt and sampling steps must be at least 1.")
        if not 0.0 <= self.uncond_fraction <= 1.0:
            raise ValueError(f"uncond_fraction is a share between 0 and 1, not {self.uncond_fraction}.")

    def as_dict(self) -> dict:
        return asdict(self)


def prompt_conditioning(pipe, prompt: str) -> dict:
    """The UNet's keyword inputs for one prompt (SD 1.x/2.x: text embeddings; SDXL: plus pooled and time ids)."""
    import torch

    unet = pipe.unet
    device, dtype = unet.device, unet.dtype
    if getattr(pipe, "text_encoder_2", None) is not None:
        emb, _, pooled, _ = pipe.encode_prompt(prompt, device=device, num_images_per_prompt=1,
                                               do_classifier_free_guidance=False)
        size = unet.config.sample_size
        px = (size[0] if isinstance(size, (tuple, list)) else size) * pipe.vae_scale_factor
        time_ids = torch.tensor([[px, px, 0, 0, px, px]], device=device, dtype=dtype)
        return dict(encoder_hidden_states=emb.to(dtype),
                    added_cond_kwargs={"text_embeds": pooled.to(dtype), "time_ids": time_ids})
    emb, _ = pipe.encode_prompt(prompt, device, 1, False)
    return dict(encoder_hidden_states=emb.to(dtype))


def _stack(conditions: list[dict]) -> dict:
    import torch

    out = {}
    for key, value in conditions[0].items():
        if isinstance(value, dict):
            out[key] = {k: torch.cat([c[key][k] for c in conditions]) for k in value}
        else:
            out[key] = torch.cat([c[key] for c in conditions])
    return out


def _detach_from_base(student) -> None:
    """A reduced UNet shares the base's untouched tensors (copy_sharing_weights); training must not move them."""
    import torch

    with torch.no_grad():
        for p in student.parameters():
            p.data = p.data.clone()
        for module in student.modules():
            for name, buf in list(module._buffers.items()):
                if buf is not None:
                    module._buffers[name] = buf.clone()


def _check_memory(student, teacher) -> None:
    """On a GPU, refuses before starting when float32 weights + gradients + AdamW states cannot fit."""
    import torch

    if teacher.device.type != "cuda":
        return
    params = sum(p.numel() for p in student.parameters())
    needed = params * 16 + 2 * 1024**3  # weights, grads, two Adam moments in float32; activations at small batch
    free, _ = torch.cuda.mem_get_info(teacher.device)
    if needed > free:
        raise HeadRoomError(
            f"Healing this fragment needs about {needed / 1e9:.1f} GB of GPU memory ({params / 1e6:.0f} M parameters "
            f"trained in float32 with AdamW) and {free / 1e9:.1f} GB is free. Extract with healing off "
            "(`--heal-steps 0`) or on a larger GPU."
        )


def heal_unet(student, pipe, prompts: list[str], config: HealConfig, progress=None, token=None) -> dict:
    """Distils `student` (trained in place, float32) towards `pipe.unet` (the base, untouched) on `prompts`.
    Returns what the manifest records: the config, the prompts, first/last loss and seconds."""
    import time

    import torch

    from core.offline import import_diffusers

    if not prompts:
        raise HeadRoomError("Healing needs the profile's prompts, and this profile has none.")
    if config.steps == 0:
        raise HeadRoomError("Healing with 0 steps does nothing; leave healing off instead.")
    sink = as_sink(progress, token)
    start = time.perf_counter()
    teacher = pipe.unet
    device = teacher.device
    total = len(prompts) * config.images_per_prompt + config.steps
    done = 0
    latents = []
    with torch.no_grad():
        for i, prompt in enumerate(prompts):
            for j in range(config.images_per_prompt):
                generator = torch.Generator().manual_seed(config.seed * 1000003 + i * 1009 + j)
                out = pipe(prompt, num_inference_steps=config.sampling_steps, generator=generator,
                           output_type="latent")
                latents.append(out.images.float().cpu())  # batches are drawn on the CPU, like the noise
                done += 1
                sink.report(done, total, "healing: generating the base's latents")
        conditions = [prompt_conditioning(pipe, p) for p in prompts]
        uncond = prompt_conditioning(pipe, "")
    latents = torch.cat(latents)
    prompt_of = torch.arange(len(prompts)).repeat_interleave(config.images_per_prompt)
    noise_schedule = import_diffusers().DDPMScheduler.from_config(pipe.scheduler.config)
    steps_total = noise_schedule.config.num_train_timesteps

    _check_memory(student, teacher)
    original_dtype = student.dtype
    _detach_from_base(student)
    student.float().train().requires_grad_(True)
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(config.seed)
    first = last = None
    try:
        for step in range(config.steps):
            idx = torch.randint(0, latents.shape[0], (config.batch,), generator=gen)
            drop = torch.rand(config.batch, generator=gen) < config.uncond_fraction
            t = torch.randint(0, steps_total, (config.batch,), generator=gen)
            noise = torch.randn(latents[idx].shape, generator=gen)
            noisy = noise_schedule.add_noise(latents[idx], noise, t)
            cond = _stack([uncond if d else conditions[int(prompt_of[k])] for k, d in zip(idx, drop)])
            noisy, t = noisy.to(device), t.to(device)
            with torch.no_grad():
                target = teacher(noisy.to(teacher.dtype), t, **cond, return_dict=False)[0].float()
            cond32 = {k: ({kk: vv.float() for kk, vv in v.items()} if isinstance(v, dict) else v.float())
                      for k, v in cond.items()}
            pred = student(noisy, t, **cond32, return_dict=False)[0]
            loss = (pred - target).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            last = float(loss.detach())
            first = last if first is None else first
            done += 1
            sink.report(done, total, f"healing: step {step + 1}/{config.steps}, loss {last:.2e}")
    finally:
        student.eval().requires_grad_(False).to(original_dtype)
    return dict(config.as_dict(), prompts=list(prompts), loss_first=first, loss_last=last,
                seconds=round(time.perf_counter() - start, 2))
