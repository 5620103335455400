"""Drive generation while a `HeadProfiler` records: through a diffusers pipeline, or a bare UNet.

Both report every denoising step to a progress sink; every report is a cancel point, so a cancel stops the
run within one step and the model is restored by the profiler's context manager on the way out.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Sequence

from core.profiling.config import ProfilerConfig
from core.profiling.structure import ProfilingError
from core.progress import as_sink


def _seed_list(seeds) -> list[int]:
    if isinstance(seeds, int):
        if seeds < 1:
            raise ProfilingError("At least one seed is needed.")
        return list(range(seeds))
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ProfilingError("At least one seed is needed.")
    if len(set(seeds)) != len(seeds):
        raise ProfilingError(f"Seeds repeat in {seeds}: each seed must be different.")
    return seeds


def _tokenize(tokenizer, text: str, n_tokens: int):
    """The prompt's own tokens (start .. end, no padding), a content mask over the key positions, truncation."""
    import torch

    ids = tokenizer(text, padding="max_length", max_length=n_tokens, truncation=True).input_ids
    full = tokenizer(text, truncation=False).input_ids
    eos = tokenizer.eos_token_id
    end = ids.index(eos) + 1 if eos in ids else len(ids)
    mask = torch.zeros(n_tokens)
    mask[1:end - 1] = 1.0
    return tokenizer.convert_ids_to_tokens(ids[:end]), mask, len(full) > n_tokens


def _unwrap(loaded_or_pipe):
    pipe = getattr(loaded_or_pipe, "pipe", loaded_or_pipe)
    info = dict(model_hash=getattr(loaded_or_pipe, "model_hash", "unhashed"),
                model_name=getattr(loaded_or_pipe, "name", type(pipe).__name__),
                family=getattr(loaded_or_pipe, "family", "unknown"))
    return pipe, info


def _size(pipe, size) -> tuple[int, int]:
    if size is None:
        side = pipe.unet.config.sample_size * pipe.vae_scale_factor
        return side, side
    if isinstance(size, int):
        return size, size
    return int(size[0]), int(size[1])


def profile_model(loaded_or_pipe, prompts: Sequence[str], seeds=8, steps: int = 30, guidance: float = 7.5,
                  size=None, config: ProfilerConfig | None = None, progress=None, token=None,
                  negative_prompt: str = "", sampler=None):
    """Generates every prompt with every seed and returns a `Profile` of the attention heads.

    `seeds`: a list of seeds or a count (0..N-1). `size`: (height, width) in pixels, default the model's.
    `guidance` > 1 runs classifier-free guidance; its unconditional half is kept apart from the conditional.
    `sampler`: an optional running `MemorySampler`; its summary goes into the profile's metadata.
    """
    import torch

    from core.profiling.profile_file import Profile, build_meta
    from core.profiling.recorder import HeadProfiler

    pipe, info = _unwrap(loaded_or_pipe)
    prompts = [str(p) for p in prompts]
    if not prompts:
        raise ProfilingError("At least one prompt is needed.")
    seeds = _seed_list(seeds)
    if steps < 1:
        raise ProfilingError("At least one denoising step is needed.")
    config = config or ProfilerConfig()
    sink = as_sink(progress, token)
    cfg = guidance > 1.0
    height, width = _size(pipe, size)
    n_tokens = pipe.tokenizer.model_max_length
    tokenized = [_tokenize(pipe.tokenizer, p, n_tokens) for p in prompts]
    neg_tokens, neg_mask, _ = _tokenize(pipe.tokenizer, negative_prompt, n_tokens)
    latent_hw = (height // pipe.vae_scale_factor, width // pipe.vae_scale_factor)
    pipe.set_progress_bar_config(disable=True)
    total = len(seeds) * len(prompts) * steps
    done = 0
    started = time.perf_counter()
    started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    generation_s: list[float] = []

    profiler = HeadProfiler(pipe.unet, n_seeds=len(seeds), n_prompts=len(prompts), steps=steps, cfg=cfg,
                            n_tokens=n_tokens, config=config)
    sink.report(0, total, "Starting profiling")
    with profiler:
        for si, seed in enumerate(seeds):
            for pi, prompt in enumerate(prompts):
                masks = torch.stack([neg_mask, tokenized[pi][1]]).unsqueeze(1)  # (2, 1, tokens)
                profiler.begin_generation(si, [pi], masks, latent_hw)
                t0 = time.perf_counter()

                def on_step_end(p, i, t, kwargs, _seed=seed, _pi=pi, _si=si, _base=done):
                    nonlocal done
                    n = getattr(p, "num_timesteps", None) or steps  # 2nd-order schedulers: more calls
                    step = min(i * steps // n, steps - 1)
                    profiler.end_step(step)
                    done = _base + step + 1
                    sink.report(done, total, f"seed {_seed} ({_si + 1}/{len(seeds)}), prompt {_pi + 1}/"
                                f"{len(prompts)}, step {step + 1}/{steps}",
                                {"seed": _seed, "prompt_index": _pi, "step": step})
                    return {}

                pipe(prompt, negative_prompt=negative_prompt if cfg else None, num_inference_steps=steps,
                     guidance_scale=guidance, height=height, width=width,
                     generator=torch.Generator("cpu").manual_seed(seed),
                     output_type="pil" if config.decode_images else "latent",
                     callback_on_step_end=on_step_end)
                generation_s.append(time.perf_counter() - t0)
                done = (si * len(prompts) + pi + 1) * steps
    elapsed = time.perf_counter() - started
    unet = pipe.unet
    meta = build_meta(
        **info, prompts=prompts, negative_prompt=negative_prompt, seeds=seeds, steps=steps, guidance=guidance,
        cfg=cfg, height=height, width=width, scheduler=type(pipe.scheduler).__name__,
        scheduler_config={k: v for k, v in dict(pipe.scheduler.config).items() if not k.startswith("_")},
        dtype=str(unet.dtype).replace("torch.", ""), device=str(unet.device),
        tokens=[t[0] for t in tokenized], negative_tokens=neg_tokens,
        truncated_prompts=[i for i, t in enumerate(tokenized) if t[2]],
        **_common_meta(profiler, config, started_at, elapsed, generation_s, sampler),
    )
    return Profile(meta, _collect(profiler))


def _common_meta(profiler, config: ProfilerConfig, started_at: str, elapsed: float, generation_s: list,
                 sampler) -> dict:
    from dataclasses import asdict

    n_steps = max(1, len(generation_s) * profiler.steps)
    meta = dict(
        n_tokens=profiler.n_tokens, step_buckets=profiler.bucket_of_step,
        modules=[m.to_json() for m in profiler.modules], ffn=[f.to_json() for f in profiler.ffns],
        total_heads=profiler.total_heads, cross_heads=profiler.cross_heads,
        config={k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
        timings=dict(started_at=started_at, total_s=round(elapsed, 4), generations=len(generation_s),
                     per_generation_s=[round(s, 4) for s in generation_s],
                     mean_step_s=round(sum(generation_s) / n_steps, 5)),
    )
    if sampler is not None:
        meta["memory"] = sampler.summary()
    return meta


def _collect(profiler) -> dict:
    count, prompt_count, ffn_count = profiler.counts_tensors()
    tensors = {key: value.detach().cpu() for key, value in profiler.sums.items()}
    tensors.update({key: value.detach().cpu() for key, value in profiler.maps.items()})
    tensors["count"], tensors["prompt_count"] = count, prompt_count
    if "ffn" in tensors:
        tensors["ffn_count"] = ffn_count
    if "energy" not in tensors:
        raise ProfilingError("No denoising step was recorded; nothing to save.")
    return tensors


# -- bare UNet (SD 1.5 / SDXL architectures without a pipeline) --------------------------------------------
def unet_conditioning(unet, prompt_index: int, n_tokens: int = 77, latent_hw=(32, 32)):
    """Seeded random text conditioning for a bare UNet: (context (1, tokens, dim), added_cond_kwargs | None)."""
    import torch

    cfg = unet.config
    gen = torch.Generator().manual_seed(10_000 + prompt_index)
    dtype, device = unet.dtype, unet.device
    context = torch.randn(1, n_tokens, cfg.cross_attention_dim, generator=gen).to(device, dtype)
    added = None
    if cfg.addition_embed_type == "text_time":
        dim = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
        h, w = latent_hw[0] * 8, latent_hw[1] * 8
        added = {"text_embeds": torch.randn(1, dim, generator=gen).to(device, dtype),
                 "time_ids": torch.tensor([[h, w, 0, 0, h, w]], dtype=dtype, device=device)}
    return context, added


def default_scheduler():
    from core.builtin.architecture import SCHEDULER_CONFIG
    from core.offline import import_diffusers

    return import_diffusers().DDIMScheduler(**SCHEDULER_CONFIG)


def run_unet_loop(unet, cond, uncond=None, *, seed: int = 0, steps: int = 10, guidance: float = 7.5,
                  latent_hw=(32, 32), scheduler=None, callback=None):
    """A plain denoising loop: `cond`/`uncond` are (context, added_cond_kwargs) pairs. Returns the latents.

    `callback(i)` runs after each step (the profiler's end_step and the progress report go there)."""
    import torch

    scheduler = scheduler or default_scheduler()
    cfg = guidance > 1.0
    if cfg and uncond is None:
        raise ProfilingError("Guidance > 1 needs an unconditional input.")
    gen = torch.Generator().manual_seed(int(seed))
    latents = torch.randn(1, unet.config.in_channels, *latent_hw, generator=gen).to(unet.device, unet.dtype)
    scheduler.set_timesteps(steps)
    latents = latents * scheduler.init_noise_sigma
    context = torch.cat([uncond[0], cond[0]]) if cfg else cond[0]
    added = cond[1]
    if added is not None and cfg:
        added = {k: torch.cat([uncond[1][k], cond[1][k]]) for k in added}
    with torch.inference_mode():
        for i, t in enumerate(scheduler.timesteps):
            model_in = torch.cat([latents] * 2) if cfg else latents
            model_in = scheduler.scale_model_input(model_in, t)
            noise = unet(model_in, t, encoder_hidden_states=context, added_cond_kwargs=added, return_dict=False)[0]
            if cfg:
                noise_uncond, noise_cond = noise.chunk(2)
                noise = noise_uncond + guidance * (noise_cond - noise_uncond)
            latents = scheduler.step(noise, t, latents).prev_sample
            if callback is not None:
                callback(i)
    return latents


def profile_unet(unet, prompts=4, seeds=8, steps: int = 30, guidance: float = 7.5, latent_hw=(32, 32),
                 config: ProfilerConfig | None = None, progress=None, token=None, model_hash: str = "unhashed",
                 model_name: str = "bare-unet", family: str = "unknown", n_tokens: int = 77, sampler=None):
    """Profiles a bare UNet driven by `run_unet_loop` with seeded random text embeddings (one per "prompt").

    For architectures without a pipeline at hand (SD 1.5 / SDXL structure and speed checks)."""
    from core.profiling.profile_file import Profile, build_meta
    from core.profiling.recorder import HeadProfiler

    n_prompts = prompts if isinstance(prompts, int) else len(prompts)
    labels = [f"random-embedding-{i}" for i in range(n_prompts)] if isinstance(prompts, int) else list(prompts)
    seeds = _seed_list(seeds)
    config = config or ProfilerConfig()
    sink = as_sink(progress, token)
    cfg = guidance > 1.0
    total, done = len(seeds) * n_prompts * steps, 0
    started, generation_s = time.perf_counter(), []
    started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    conds = [unet_conditioning(unet, i, n_tokens, latent_hw) for i in range(n_prompts)]
    uncond = unet_conditioning(unet, -1, n_tokens, latent_hw) if cfg else None
    profiler = HeadProfiler(unet, n_seeds=len(seeds), n_prompts=n_prompts, steps=steps, cfg=cfg,
                            n_tokens=n_tokens, config=config)
    sink.report(0, total, "Starting profiling")
    with profiler:
        for si, seed in enumerate(seeds):
            for pi in range(n_prompts):
                profiler.begin_generation(si, [pi], None, tuple(latent_hw))
                t0 = time.perf_counter()

                def on_step(i, _seed=seed, _pi=pi):
                    nonlocal done
                    profiler.end_step(i)
                    done += 1
                    sink.report(done, total, f"seed {_seed}, prompt {_pi + 1}/{n_prompts}, step {i + 1}/{steps}",
                                {"seed": _seed, "prompt_index": _pi, "step": i})

                run_unet_loop(unet, conds[pi], uncond, seed=seed, steps=steps, guidance=guidance,
                              latent_hw=tuple(latent_hw), callback=on_step)
                generation_s.append(time.perf_counter() - t0)
    meta = build_meta(
        model_hash=model_hash, model_name=model_name, family=family, prompts=labels, negative_prompt="",
        seeds=seeds, steps=steps, guidance=guidance, cfg=cfg, height=latent_hw[0] * 8, width=latent_hw[1] * 8,
        scheduler="DDIMScheduler", dtype=str(unet.dtype).replace("torch.", ""), device=str(unet.device),
        tokens=[[] for _ in labels], negative_tokens=[], truncated_prompts=[],
        **_common_meta(profiler, config, started_at, time.perf_counter() - started, generation_s, sampler),
    )
    return Profile(meta, _collect(profiler))
