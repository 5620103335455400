"""Benchmark of the profiling engine; writes reports/bench_profiling.json.

1. Overhead of statistics mode vs plain generation of the same images, same process, interleaved repeats,
   median: on builtin:shapes (through the pipeline) and on a full-size SD 1.5-architecture UNet with random
   weights at 32x32 latents (bare UNet, the same denoising loop with and without the profiler).
   Target: <= 10 %. Wall time is reported next to process CPU time: on a shared machine wall time is noisy.
2. A full-size SDXL-architecture UNet (random weights, bf16, small latents) profiles correctly:
   140 modules, 2,600 heads, finite positive energies, token mass summing to one.
3. File size of a 16 prompts x 8 seeds x 30 steps SDXL profile: the accumulators are synthesised with the
   exact shapes the recorder produces (zeros; safetensors does not compress, so the size is exact) and saved
   through the same `Profile.save`. Target: < 50 MB.

    .venv/bin/python bench/bench_profiling.py [--quick] [--skip-sd15] [--skip-sdxl] [--repeats N]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def interleaved(plain, profiled, repeats: int) -> dict:
    plain(), profiled()  # warm-up (allocator, first-call paths)
    runs = {"plain_wall_s": [], "profiled_wall_s": [], "plain_cpu_s": [], "profiled_cpu_s": []}
    for r in range(repeats):
        order = (("plain", plain), ("profiled", profiled)) if r % 2 == 0 else (("profiled", profiled), ("plain", plain))
        for name, fn in order:
            wall, cpu = timed(fn)
            runs[f"{name}_wall_s"].append(round(wall, 4))
            runs[f"{name}_cpu_s"].append(round(cpu, 4))
    med = {k: statistics.median(v) for k, v in runs.items()}
    return {"repeats": repeats, "runs": runs, "median": med,
            "overhead_wall": round(med["profiled_wall_s"] / med["plain_wall_s"] - 1, 4),
            "overhead_cpu": round(med["profiled_cpu_s"] / med["plain_cpu_s"] - 1, 4)}


def bench_builtin(repeats: int, steps: int) -> dict:
    import torch

    from core.loading import load_model
    from core.profiling import profile_model

    loaded = load_model("builtin:shapes")
    pipe = loaded.pipe
    prompts, seeds = ["a red circle", "two blue squares"], [0, 1]

    def plain():
        for seed in seeds:
            for prompt in prompts:
                pipe(prompt, negative_prompt="", num_inference_steps=steps, guidance_scale=7.5,
                     generator=torch.Generator("cpu").manual_seed(seed), output_type="latent")

    def profiled():
        profile_model(loaded, prompts, seeds=seeds, steps=steps)

    result = interleaved(plain, profiled, repeats)
    result.update(model="builtin:shapes", prompts=len(prompts), seeds=len(seeds), steps=steps, latents="16x16")
    return result


def full_unet(family: str, dtype):
    import torch

    from core.offline import import_diffusers
    from core.testing.tiny_models import unet_config

    diffusers = import_diffusers()
    previous = torch.get_default_dtype()
    torch.manual_seed(0)
    torch.set_default_dtype(dtype)  # build directly in the target dtype: no fp32 copy of an SDXL UNet in RAM
    try:
        return diffusers.UNet2DConditionModel(**unet_config(family)).eval()
    finally:
        torch.set_default_dtype(previous)


def bench_sd15(repeats: int, steps: int) -> dict:
    import torch

    from core.profiling import profile_unet, run_unet_loop
    from core.profiling.run import unet_conditioning

    unet = full_unet("sd15", torch.float32)
    latent = (32, 32)
    cond, uncond = unet_conditioning(unet, 0, latent_hw=latent), unet_conditioning(unet, -1, latent_hw=latent)

    def plain():
        run_unet_loop(unet, cond, uncond, seed=0, steps=steps, guidance=7.5, latent_hw=latent)

    def profiled():
        profile_unet(unet, prompts=1, seeds=[0], steps=steps, guidance=7.5, latent_hw=latent)

    result = interleaved(plain, profiled, repeats)
    profile = profile_unet(unet, prompts=1, seeds=[0], steps=1, latent_hw=latent)
    result.update(model="SD 1.5 architecture, random weights, fp32", parameters=sum(p.numel() for p in unet.parameters()),
                  modules=len(profile.modules), heads=profile.meta["total_heads"], steps=steps,
                  latents=f"{latent[0]}x{latent[1]}")
    del unet
    gc.collect()
    return result


def bench_sdxl(steps: int) -> dict:
    import torch

    from core.profiling import MemorySampler, profile_unet

    t0 = time.perf_counter()
    unet = full_unet("sdxl", torch.bfloat16)
    build_s = time.perf_counter() - t0
    latent = (16, 16)
    with MemorySampler() as sampler:
        profile = profile_unet(unet, prompts=1, seeds=[0, 1], steps=steps, guidance=7.5, latent_hw=latent,
                               model_name="sdxl-arch-random", family="sdxl", sampler=None)
    attention = [n for n, m in unet.named_modules() if type(m).__name__ == "Attention"]
    energy = profile.head_stat("energy")
    mass_sums = []
    for record in profile.cross_modules:
        full, _ = profile.token_mass_per_token(record.name, trim=False)
        mass_sums.append(full.sum(-1))
    mass_sums = torch.cat(mass_sums)
    checks = {
        "modules": len(profile.modules), "heads": profile.meta["total_heads"],
        "cross_modules": len(profile.cross_modules), "cross_heads": profile.meta["cross_heads"],
        "ffn_modules": len(profile.ffn_modules), "ffn_neurons": sum(f.inner for f in profile.ffn_modules),
        "module_names_match_unet": [m.name for m in profile.modules] == attention,
        "all_energies_finite_positive": all(bool(torch.isfinite(v).all() and (v > 0).all()) for v in energy.values()),
        "token_mass_sum_max_abs_error": float((mass_sums - 1).abs().max()),
        "energy_var_across_2_seeds_nonzero": sum(int((v > 0).sum()) for v in profile.head_stat("energy_var").values()),
    }
    checks["ok"] = (checks["modules"] == 140 and checks["heads"] == 2600 and checks["module_names_match_unet"]
                    and checks["all_energies_finite_positive"] and checks["token_mass_sum_max_abs_error"] < 2e-2)
    structure = [m.to_json() for m in profile.modules], [f.to_json() for f in profile.ffn_modules]
    result = {"model": "SDXL architecture, random weights, bf16", "build_s": round(build_s, 1),
              "latents": f"{latent[0]}x{latent[1]}", "steps": steps, "seeds": 2, "prompts": 1,
              "profile_s": profile.meta["timings"]["total_s"], "memory": sampler.summary(), "checks": checks}
    del unet, profile
    gc.collect()
    return result, structure


def synthetic_file_size(modules: list, ffns: list, prompts: int = 16, seeds: int = 8, steps: int = 30,
                        tokens: int = 77) -> dict:
    """Saves a profile whose accumulators have exactly the recorder's shapes for this run size."""
    import torch

    from core.profiling import Profile
    from core.profiling.config import ProfilerConfig, step_buckets
    from core.profiling.profile_file import build_meta

    buckets = step_buckets(steps, ProfilerConfig().max_step_buckets)
    k = buckets[-1] + 1
    nh = sum(m["heads"] for m in modules)
    nc = sum(m["heads"] for m in modules if m["kind"] == "cross")
    nf = sum(f["inner"] for f in ffns)
    z = torch.zeros
    tensors = {"energy": z(seeds, k, 2, nh), "mass": z(seeds, k, 2, nc), "entropy": z(seeds, k, 2, nc),
               "energy_prompt": z(prompts, 2, nh), "token_mass_prompt": z(prompts, 2, nc, tokens),
               "ffn": z(2, nf), "count": z(seeds, k, 2), "prompt_count": z(prompts, 2), "ffn_count": z(2)}
    words = ["a", "photo", "of", "an", "astronaut", "riding", "a", "horse", "on", "mars"] * 8
    meta = build_meta(model_hash="0" * 64, model_name="sdxl", family="sdxl",
                      prompts=[" ".join(words[:70]) + f" {i}" for i in range(prompts)], negative_prompt="",
                      seeds=list(range(seeds)), steps=steps, guidance=7.5, cfg=True, height=1024, width=1024,
                      scheduler="EulerDiscreteScheduler", dtype="float16", device="cuda:0",
                      tokens=[["<|startoftext|>"] + [w + "</w>" for w in words[:75]] + ["<|endoftext|>"]] * prompts,
                      negative_tokens=["<|startoftext|>", "<|endoftext|>"], truncated_prompts=[],
                      n_tokens=tokens, step_buckets=buckets, modules=modules, ffn=ffns, total_heads=nh,
                      cross_heads=nc, timings={"total_s": 0.0, "per_generation_s": [1.0] * (prompts * seeds)})
    with tempfile.TemporaryDirectory() as tmp:
        path = Profile(meta, tensors).save(Path(tmp) / "sdxl_16x8x30.hrprof")
        size = path.stat().st_size
        Profile.load(path)  # and it reads back
    tensor_bytes = sum(t.numel() * 4 for t in tensors.values())
    return {"prompts": prompts, "seeds": seeds, "steps": steps, "buckets": k, "file_bytes": size,
            "file_mb": round(size / 1e6, 2), "tensor_bytes": tensor_bytes,
            "tensor_shapes": {key: list(t.shape) for key, t in tensors.items()}, "ok": size < 50e6,
            "method": "synthesised accumulators with the recorder's exact shapes, saved with Profile.save"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and steps (smoke run)")
    parser.add_argument("--skip-builtin", action="store_true")
    parser.add_argument("--skip-sd15", action="store_true")
    parser.add_argument("--skip-sdxl", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench_profiling.json"))
    args = parser.parse_args(argv)
    import torch

    repeats = 2 if args.quick else args.repeats
    report = {"bench": "profiling", "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": {"python": platform.python_version(), "torch": torch.__version__,
                          "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "load_avg_at_start": os.getloadavg()},
              "targets": {"overhead_max": 0.10, "sdxl_modules": 140, "sdxl_heads": 2600, "file_mb_max": 50}}
    if not args.skip_builtin:
        print("builtin:shapes overhead ...", file=sys.stderr)
        report["builtin_overhead"] = bench_builtin(repeats, steps=4 if args.quick else 10)
        print(json.dumps(report["builtin_overhead"]["median"]), report["builtin_overhead"]["overhead_wall"],
              report["builtin_overhead"]["overhead_cpu"], file=sys.stderr)
    if not args.skip_sd15:
        print("SD 1.5-architecture overhead ...", file=sys.stderr)
        report["sd15_overhead"] = bench_sd15(max(2, repeats - 2), steps=2 if args.quick else 4)
        print(json.dumps(report["sd15_overhead"]["median"]), report["sd15_overhead"]["overhead_wall"],
              report["sd15_overhead"]["overhead_cpu"], file=sys.stderr)
    if not args.skip_sdxl:
        print("SDXL-architecture profile ...", file=sys.stderr)
        report["sdxl_profile"], (modules, ffns) = bench_sdxl(steps=1 if args.quick else 2)
        print(json.dumps(report["sdxl_profile"]["checks"]), file=sys.stderr)
    else:
        modules, ffns = sdxl_structure_on_meta()
    report["sdxl_file_size"] = synthetic_file_size(modules, ffns)
    print(json.dumps({k: report["sdxl_file_size"][k] for k in ("file_mb", "ok")}), file=sys.stderr)
    report["load_avg_at_end"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def sdxl_structure_on_meta():
    """Module layout of the full SDXL UNet without weights (meta device)."""
    import torch

    from core.offline import import_diffusers
    from core.profiling.structure import discover
    from core.testing.tiny_models import unet_config

    with torch.device("meta"):
        unet = import_diffusers().UNet2DConditionModel(**unet_config("sdxl"))
    modules, ffns = discover(unet)
    return [m.to_json() for m in modules], [f.to_json() for f in ffns]


if __name__ == "__main__":
    sys.exit(main())
