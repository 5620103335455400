"""Benchmark of the profiling engine; writes reports/bench_profiling.json.

1. Overhead of statistics mode vs plain generation of the same images, same process, interleaved
   (plain, profiled) pairs, median of the pairwise ratios: on builtin:shapes (through the pipeline) and on a full-size SD 1.5-architecture UNet with random
   weights at 32x32 latents (bare UNet, the same denoising loop with and without the profiler).
   Target: <= 10 %. Wall time is reported next to process CPU time: on a shared machine wall time is noisy.
2. A full-size SDXL-architecture UNet (random weights, bf16, small latents) profiles correctly:
   140 modules, 2,600 heads, finite positive energies, token mass summing to one.
3. File size of a 16 prompts x 8 seeds x 30 steps SDXL profile: the accumulators are synthesised with the
   exact shapes the recorder produces (zeros; safetensors does not compress, so the size is exact) and saved
   through the same `Profile.save`. Target: < 50 MB.

    .venv/bin/python bench/bench_profiling.py [--quick] [--skip-builtin] [--skip-sd15] [--skip-sdxl] [--pairs N] [--steps N]
                                        [--sd15-pairs N] [--threads 1] [--out PATH]
                                        [--without-stored-signature]
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


def interleaved(plain, profiled, pairs: int) -> dict:
    """`pairs` back-to-back (plain, profiled) runs of one generation each, the order alternating.

    On a shared machine the load drifts by 2x within minutes; a ratio of two adjacent runs cancels the drift,
    so the headline number is the median of the pairwise ratios (medians of each variant are reported too).
    """
    plain(), profiled()  # warm-up (allocator, first-call paths)
    runs = {"plain_wall_s": [], "profiled_wall_s": [], "plain_cpu_s": [], "profiled_cpu_s": []}
    for r in range(pairs):
        order = (("plain", plain), ("profiled", profiled)) if r % 2 == 0 else (("profiled", profiled), ("plain", plain))
        for name, fn in order:
            wall, cpu = timed(fn)
            runs[f"{name}_wall_s"].append(round(wall, 4))
            runs[f"{name}_cpu_s"].append(round(cpu, 4))
    med = {k: statistics.median(v) for k, v in runs.items()}
    ratio_wall = [b / a for a, b in zip(runs["plain_wall_s"], runs["profiled_wall_s"])]
    ratio_cpu = [b / a for a, b in zip(runs["plain_cpu_s"], runs["profiled_cpu_s"])]
    return {"pairs": pairs, "runs": runs, "median": med,
            "overhead_wall": round(statistics.median(ratio_wall) - 1, 4),
            "overhead_cpu": round(statistics.median(ratio_cpu) - 1, 4),
            "overhead_of_medians_wall": round(med["profiled_wall_s"] / med["plain_wall_s"] - 1, 4)}


def bench_builtin(pairs: int, steps: int) -> dict:
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

    def profiled():  # the whole user path: set-up, tokens, statistics, restore, Profile built
        profile_model(loaded, prompts, seeds=seeds, steps=steps)

    result = interleaved(plain, profiled, pairs)
    result.update(model="builtin:shapes", unit="4 generations (2 prompts x 2 seeds)", steps=steps, latents="16x16",
                  statistics="energy + cross token mass/entropy + FFN (defaults)")
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


def bench_sd15(pairs: int, steps: int) -> dict:
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

    result = interleaved(plain, profiled, pairs)
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
    parser.add_argument("--pairs", type=int, default=8, help="(plain, profiled) pairs on builtin:shapes")
    parser.add_argument("--steps", type=int, default=20, help="denoising steps per generation on builtin:shapes")
    parser.add_argument("--without-stored-signature", action="store_true",
                        help="drop the profiling processor's stored __call__ signature (shows what it saves)")
    parser.add_argument("--sd15-pairs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: least noise on a shared machine)")
    parser.add_argument("--quick", action="store_true", help="fewer pairs and steps (smoke run)")
    parser.add_argument("--skip-builtin", action="store_true")
    parser.add_argument("--skip-sd15", action="store_true")
    parser.add_argument("--skip-sdxl", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench_profiling.json"))
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.without_stored_signature:
        from core.profiling.processor import ProfilingAttnProcessor

        del ProfilingAttnProcessor.__call__.__signature__
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"bench": "profiling", "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": {"python": platform.python_version(), "torch": torch.__version__,
                          "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "load_avg_at_start": os.getloadavg()},
              "profiler_stored_signature": not args.without_stored_signature,
              "targets": {"overhead_max": 0.10, "sdxl_modules": 140, "sdxl_heads": 2600, "file_mb_max": 50}}

    def write():
        report["load_avg_now"] = os.getloadavg()
        out.write_text(json.dumps(report, indent=2) + "\n")

    def show(key):
        r = report[key]
        print(f"{key}: overhead {r['overhead_wall']:+.1%} wall, {r['overhead_cpu']:+.1%} cpu "
              f"(median pairwise ratios); medians {json.dumps(r['median'])}", file=sys.stderr)

    if not args.skip_builtin:
        print("builtin:shapes overhead ...", file=sys.stderr)
        report["builtin_overhead"] = bench_builtin(3 if args.quick else args.pairs, steps=4 if args.quick else args.steps)
        show("builtin_overhead")
        write()
    if not args.skip_sd15:
        print("SD 1.5-architecture overhead ...", file=sys.stderr)
        report["sd15_overhead"] = bench_sd15(2 if args.quick else args.sd15_pairs, steps=2 if args.quick else 3)
        show("sd15_overhead")
        write()
    if not args.skip_sdxl:
        print("SDXL-architecture profile ...", file=sys.stderr)
        report["sdxl_profile"], (modules, ffns) = bench_sdxl(steps=1 if args.quick else 2)
        print(json.dumps(report["sdxl_profile"]["checks"]), file=sys.stderr)
        write()
    else:
        modules, ffns = sdxl_structure_on_meta()
    report["sdxl_file_size"] = synthetic_file_size(modules, ffns)
    print(json.dumps({k: report["sdxl_file_size"][k] for k in ("file_mb", "ok")}), file=sys.stderr)
    write()
    print(f"wrote {out}", file=sys.stderr)
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
