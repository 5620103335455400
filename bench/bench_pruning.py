"""Benchmark of pruning and fragments; writes reports/bench_pruning.json (after every section).

1. estimate: `select_heads` + `estimate` on the full SDXL UNet structure (meta device: 140 modules, 2,600
   heads), as the GUI slider calls them. Target < 50 ms.
2. sdxl_bytes: resident UNet bytes of the full SDXL architecture, base vs fragment, per reduction type, for
   each offered mode. Computed on meta tensors: shapes and dtypes are exact, so bytes are exact (the surgery,
   int8 quantisation and casts run on meta tensors through the same code as on real ones). Low-rank needs
   real singular values: measured separately on a tiny SDXL-architecture UNet. Target >= 40% in the most
   aggressive mode.
3. builtin_preset: builtin:shapes at the default preset: profile (held-apart prompts), extract, generate the
   same prompts x seeds with base and fragment, rule-based checker accuracy (core.shapes.checker).
   Target >= 30% heads removed, accuracy within 2 points.
4. sd15_extract: a full-size SD 1.5-architecture UNet (random weights, fp32, CPU): an existing profile
   (made beforehand, small latents, not timed) -> extract -> saved fragment, timed. Target <= 60 s.

    .venv/bin/python bench/bench_pruning.py [--sections estimate,sdxl_bytes,builtin_preset,sd15_extract]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "reports" / "bench_pruning.json"
SECTIONS = ("estimate", "sdxl_bytes", "builtin_preset", "sd15_extract", "score_agreement", "score_choice")


def _write(report: dict, path: Path = OUT) -> None:
    from core.io import write_json_atomic

    write_json_atomic(path, report)


def bench_estimate(repeats: int = 200) -> dict:
    import numpy as np

    from core.pruning.scores import HeadScores
    from core.pruning.selection import PruneConfig, estimate, select_heads
    from core.pruning.structure import UnetStructure
    from core.testing.tiny_models import full_unet

    t = time.perf_counter()
    structure = UnetStructure.from_unet(full_unet("sdxl", device="meta"), dtype_bytes=2)
    build_s = time.perf_counter() - t
    rng = np.random.default_rng(0)
    scores = HeadScores({n: rng.random(h) for n, h in zip(structure.names, structure.heads)}, "random", "none")
    times = []
    for i in range(repeats):
        p = float(i % 90)
        t = time.perf_counter()
        sel = select_heads(scores, PruneConfig("percentile", p), structure)
        estimate(sel)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    from core.pruning.selection import estimate_reductions

    full_times = []
    for i in range(repeats):
        t = time.perf_counter()
        sel = select_heads(scores, PruneConfig("percentile", float(i % 90)), structure)
        estimate_reductions(sel, structure, ffn_ratio=0.5, precision="int8")
        full_times.append((time.perf_counter() - t) * 1000)
    full_times.sort()
    half = estimate(select_heads(scores, PruneConfig("retention", 0.5), structure))
    return dict(modules=len(structure.names), heads=structure.total_heads, structure_build_s=round(build_s, 3),
                select_plus_estimate_ms_median=round(times[len(times) // 2], 3),
                select_plus_estimate_ms_max=round(times[-1], 3), repeats=repeats,
                select_plus_estimate_reductions_ms_median=round(full_times[len(full_times) // 2], 3),
                select_plus_estimate_reductions_ms_max=round(full_times[-1], 3),
                half_heads_params_removed=half.params_removed,
                half_heads_params_fraction=round(half.params_fraction_removed, 4), unet_params=half.unet_params,
                target_ms=50, passed=max(times[-1], full_times[-1]) < 50)


def _meta_selection(unet, retention, seed=0):
    import numpy as np

    from core.pruning.scores import HeadScores
    from core.pruning.selection import PruneConfig, select_heads
    from core.pruning.structure import UnetStructure

    structure = UnetStructure.from_unet(unet)
    rng = np.random.default_rng(seed)
    scores = HeadScores({n: rng.random(h) for n, h in zip(structure.names, structure.heads)}, "random", "none")
    return select_heads(scores, PruneConfig("retention", retention), structure)


def bench_sdxl_bytes() -> dict:
    import numpy as np
    import torch

    from core.pruning.extract import ExtractConfig, reduce_unet
    from core.pruning.ffn import select_ffn
    from core.pruning.structure import ff_modules
    from core.testing.tiny_models import full_unet

    modes = {
        "heads50": (0.5, 0.0, "fp32"),
        "heads50_ffn50": (0.5, 0.5, "fp32"),
        "fp16_only": (1.0, 0.0, "fp16"),
        "heads50_fp16": (0.5, 0.0, "fp16"),
        "int8_only": (1.0, 0.0, "int8"),
        "aggressive_heads50_ffn50_int8": (0.5, 0.5, "int8"),
    }
    out = {"method": "meta tensors: exact shapes and dtypes, bytes = sum(numel * element_size)", "bases": {}}
    for base_dtype in ("fp32", "fp16"):
        rows = {}
        for mode, (retention, ffn_ratio, precision) in modes.items():
            if base_dtype == "fp16" and precision == "fp16":
                continue
            unet = full_unet("sdxl", device="meta")
            if base_dtype == "fp16":
                unet = unet.to(torch.float16)
            sel = _meta_selection(unet, retention) if retention < 1 else None
            ffn = None
            if ffn_ratio:
                rng = np.random.default_rng(1)
                ffn = select_ffn({n: rng.random(m.net[2].in_features) for n, m in ff_modules(unet)}, ffn_ratio)
            rest = base_dtype if precision == "int8" else None
            res = reduce_unet(unet, sel, ffn, ExtractConfig(ffn_ratio=ffn_ratio, precision=precision,
                                                            int8_rest_dtype=rest), copy=False)
            rows[mode] = dict(
                base_bytes=res.base["bytes"], fragment_bytes=res.final["bytes"],
                bytes_fraction_removed=round(res.bytes_fraction_removed, 4),
                heads_kept=sel.heads_kept if sel else None, heads_total=sel.heads_total if sel else None,
                breakdown=[{k: v for k, v in s.items()} for s in res.breakdown],
            )
        out["bases"][base_dtype] = rows
    agg = {b: out["bases"][b]["aggressive_heads50_ffn50_int8"]["bytes_fraction_removed"] for b in out["bases"]}
    out["most_aggressive_fraction_removed"] = agg
    out["target_fraction"] = 0.40
    out["passed"] = min(agg.values()) >= 0.40
    out["low_rank_tiny_sdxl"] = _low_rank_tiny()
    return out


def _low_rank_tiny() -> dict:
    import torch

    from core.pruning.extract import ExtractConfig, reduce_unet
    from core.testing.tiny_models import tiny_unet

    rows = {}
    unet = tiny_unet("sdxl", seed=0)
    with torch.no_grad():
        for energy in (0.5, 0.8, 0.95):
            t = time.perf_counter()
            res = reduce_unet(unet, config=ExtractConfig(low_rank_energy=energy))
            rows[str(energy)] = dict(layers=len(res.plan["low_rank_layers"]),
                                     bytes_fraction_removed=round(res.bytes_fraction_removed, 4),
                                     seconds=round(time.perf_counter() - t, 2))
    return dict(note="random-init weights have a flat spectrum: low-rank saves parameters only at low retained "
                     "energy (a large approximation error); trained weights concentrate energy, which is where it "
                     "pays (not measured: no trained SD weights on this machine)", energies=rows)


def bench_builtin_preset(n_prompts: int = 48, steps: int = 20, scene_offset: int = 0) -> dict:
    import numpy as np
    import torch

    from core.fragments import apply_fragment, extract_fragment
    from core.loading import load_model
    from core.profiling import profile_model
    from core.pruning.presets import preset_request
    from core.shapes.captions import caption
    from core.shapes.checker import check_image
    from core.shapes.scene import scene_from_seed

    loaded = load_model("builtin:shapes")
    trained = bool(loaded.details.get("trained"))
    training = {}
    if trained:
        from core.builtin.loading import builtin_folder

        info = builtin_folder() / "training.json"
        training = json.loads(info.read_text()) if info.is_file() else {}
    profile_prompts = [caption(scene_from_seed(1000 + i)) for i in range(8)]
    t = time.perf_counter()
    profile = profile_model(loaded, profile_prompts, seeds=[0, 1], steps=10)
    profile_s = time.perf_counter() - t
    scenes = [scene_from_seed(scene_offset + i) for i in range(n_prompts)]
    prompts = [caption(s) for s in scenes]

    images = {}

    def run(pipe, label):
        ok, pos = [], []
        for i, (scene, prompt) in enumerate(zip(scenes, prompts)):
            g = torch.Generator().manual_seed(i)
            image = pipe(prompt, num_inference_steps=steps, generator=g).images[0]
            images.setdefault(label, []).append(image)
            v = check_image(np.asarray(image), scene)
            ok.append(v.colour_shape_ok)
            pos.append(v.position_ok)
        return float(np.mean(ok)), float(np.mean(pos))

    with torch.no_grad():
        t = time.perf_counter()
        base_acc, base_pos = run(loaded.pipe, "base")
        base_s = time.perf_counter() - t
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            manifest = extract_fragment(loaded, profile, d, preset_request("default"))
            extract_s = time.perf_counter() - t
            apply_fragment(loaded, d)
            t = time.perf_counter()
            frag_acc, frag_pos = run(loaded.pipe, "fragment")
            frag_s = time.perf_counter() - t
    heads_removed = 1 - manifest.pruning.head_retention_ratio
    from core.quality.metrics import ssim

    ssims = [ssim(a, b) for a, b in zip(images["base"], images["fragment"])]
    delta_points = 100 * (frag_acc - base_acc)
    return dict(
        weights="trained" if trained else "random stand-in (no trained weights shipped yet): accuracy is "
        "meaningless until the trained model lands; rerun this section then",
        training=training, model_hash=loaded.model_hash,
        preset="default", prompts=n_prompts, scene_offset=scene_offset, seeds="one per prompt (seed = index)", steps=steps,
        profile_prompts=len(profile_prompts), profile_seconds=round(profile_s, 1),
        heads_total=manifest.pruning.heads_total, heads_kept=manifest.pruning.heads_kept,
        heads_removed_fraction=round(heads_removed, 4),
        checker_accuracy_base=base_acc, checker_accuracy_fragment=frag_acc,
        position_accuracy_base=base_pos, position_accuracy_fragment=frag_pos,
        accuracy_delta_points=round(delta_points, 2),
        ssim_base_vs_fragment_mean=round(float(np.mean(ssims)), 4),
        ssim_base_vs_fragment_min=round(float(np.min(ssims)), 4), extract_seconds=round(extract_s, 2),
        generate_seconds_base=round(base_s, 1), generate_seconds_fragment=round(frag_s, 1),
        bytes_fraction_removed=round(1 - manifest.size.fragment_bytes / manifest.size.base_bytes, 4),
        passed_heads=heads_removed >= 0.30,
        # A delta means nothing when the base model itself rarely draws what is asked (untrained or early
        # checkpoint): then the quality criterion is NOT MEASURED (None), not passed.
        passed_quality=(abs(delta_points) <= 2.0) if trained and base_acc >= 0.2 else None,
        quality_note=None if trained and base_acc >= 0.2 else
        "NOT MEASURED: base checker accuracy below 20 %, the model does not draw the scenes yet",
    )


def bench_sd15_extract() -> dict:
    import torch

    from core.fragments import extract_fragment, load_fragment
    from core.loading.model import LoadedModel
    from core.profiling import profile_unet
    from core.pruning.heal import HealConfig
    from core.pruning.presets import preset_request
    from core.testing.tiny_models import full_unet

    t = time.perf_counter()
    unet = full_unet("sd15", device="cpu")
    build_s = time.perf_counter() - t
    model_hash = "5d15" * 16
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        profile = profile_unet(unet, prompts=1, seeds=[0], steps=1, latent_hw=(8, 8), n_tokens=77,
                               model_hash=model_hash, model_name="sd15-random", family="sd15")
        prof_path = Path(d) / "run.hrprof"
        profile.save(prof_path)
        profile_s = time.perf_counter() - t
        from core.profiling import Profile

        pipe = type("Pipe", (), {"unet": unet})()
        loaded = LoadedModel(pipe, "sd15", "sd15-random", model_hash, "bench")
        rows = {}
        for preset in ("default", "balanced"):
            out = Path(d) / f"frag-{preset}"
            t = time.perf_counter()
            prof = Profile.load(prof_path)
            with torch.no_grad():
                # The presets' taylor score and healing run the full pipeline (text encoder, sampler), which
                # this bare random UNet has not: timed here is the structural extraction with the energy score.
                request = dataclasses.replace(preset_request(preset), score="activation_energy_rank",
                                              normalize="global", heal=HealConfig())
                manifest = extract_fragment(loaded, prof, out, request)
            seconds = time.perf_counter() - t
            t = time.perf_counter()
            load_fragment(out, loaded)
            load_s = time.perf_counter() - t
            rows[preset] = dict(score="activation_energy_rank/global, no healing",
                                extract_to_saved_seconds=round(seconds, 2), load_seconds=round(load_s, 2),
                                file_mb=round((out / "unet.safetensors").stat().st_size / 1e6, 1),
                                heads_removed=manifest.pruning.heads_total - manifest.pruning.heads_kept,
                                bytes_fraction_removed=round(1 - manifest.size.fragment_bytes
                                                             / manifest.size.base_bytes, 4),
                                passed=seconds <= 60)
    return dict(unet_params=sum(p.numel() for p in unet.parameters()), build_seconds=round(build_s, 1),
                profile_seconds_not_timed=round(profile_s, 1), presets=rows, target_seconds=60,
                passed=all(r["passed"] for r in rows.values()))


def bench_score_agreement() -> dict:
    """On builtin:shapes: how well the cheap scores rank heads like the exact ablation (Spearman, per module
    normalised), and how many of the heads each would remove at the default 35th percentile are the same."""
    import numpy as np

    from core.loading import load_model
    from core.profiling import profile_model
    from core.pruning.scores import compute_head_scores
    from core.pruning.selection import PruneConfig, select_heads
    from core.pruning.structure import UnetStructure
    from core.shapes.captions import caption
    from core.shapes.scene import scene_from_seed

    loaded = load_model("builtin:shapes")
    prompts = [caption(scene_from_seed(2000 + i)) for i in range(4)]
    profile = profile_model(loaded, prompts, seeds=[0, 1], steps=10)
    structure = UnetStructure.from_unet(loaded.unet)
    timings, flat, removed = {}, {}, {}
    for method in ("activation_energy_rank", "token_mass", "taylor", "ablation"):
        t = time.perf_counter()
        scores = compute_head_scores(profile, method, "module", pipe=loaded.pipe)
        timings[method] = round(time.perf_counter() - t, 2)
        flat[method] = scores.flat(structure)
        removed[method] = ~select_heads(scores, PruneConfig("percentile", 35), structure).kept_flat

    def spearman(a, b):
        ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
        return float(np.corrcoef(ra, rb)[0, 1])

    ref = "ablation"
    return dict(
        weights="trained" if loaded.details.get("trained") else "random stand-in", model_hash=loaded.model_hash,
        heads=structure.total_heads, seconds=timings,
        spearman_vs_ablation={m: round(spearman(flat[m], flat[ref]), 3) for m in flat if m != ref},
        removed_overlap_vs_ablation={m: round(float((removed[m] & removed[ref]).sum() / max(1, removed[ref].sum())), 3)
                                     for m in flat if m != ref},
    )


def bench_score_choice(n_prompts: int = 16, steps: int = 20, retention: float = 0.64, scene_offset: int = 500) -> dict:
    """Which score/normalisation keeps builtin:shapes' images closest to the base at the same head budget
    (retention mode, so every variant removes about the same number of heads): the rule-based checker's
    colour+shape accuracy and mean SSIM, base vs logically masked model (masked == pruned, tested), same prompts
    and seeds. The scenes start at `scene_offset`, apart from builtin_preset's (0..n), so a preset chosen here is
    confirmed there on prompts it was not chosen on."""
    import numpy as np
    import torch

    from core.loading import load_model
    from core.profiling import profile_model
    from core.pruning.masks import apply_head_masks
    from core.pruning.scores import compute_head_scores
    from core.pruning.selection import PruneConfig, select_heads
    from core.pruning.structure import UnetStructure
    from core.quality.metrics import ssim
    from core.shapes.captions import caption
    from core.shapes.checker import check_image
    from core.shapes.scene import scene_from_seed

    loaded = load_model("builtin:shapes")
    profile = profile_model(loaded, [caption(scene_from_seed(1000 + i)) for i in range(8)], seeds=[0, 1], steps=10)
    structure = UnetStructure.from_unet(loaded.unet)
    scenes = [scene_from_seed(scene_offset + i) for i in range(n_prompts)]
    prompts = [caption(s) for s in scenes]

    def images():
        return [loaded.pipe(p, num_inference_steps=steps, generator=torch.Generator().manual_seed(i)).images[0]
                for i, p in enumerate(prompts)]

    def accuracy(imgs):
        return round(float(np.mean([check_image(np.asarray(im), sc).colour_shape_ok for im, sc in zip(imgs, scenes)])), 4)

    with torch.no_grad():
        base = images()
        base_accuracy = accuracy(base)
        rows = {}
        for method in ("activation_energy_rank", "taylor", "ablation", "token_mass"):
            for normalize in ("module", "global"):
                scores = compute_head_scores(profile, method, normalize, pipe=loaded.pipe)
                sel = select_heads(scores, PruneConfig("retention", retention), structure)
                with apply_head_masks(loaded.unet, sel):
                    masked = images()
                values = [ssim(a, b) for a, b in zip(base, masked)]
                acc = accuracy(masked)
                rows[f"{method}/{normalize}"] = dict(ssim_mean=round(float(np.mean(values)), 4),
                                                     checker_accuracy=acc,
                                                     delta_points=round(100 * (acc - base_accuracy), 2),
                                                     heads_removed=sel.heads_total - sel.heads_kept)
                print(method, normalize, rows[f"{method}/{normalize}"], flush=True)
    return dict(weights="trained" if loaded.details.get("trained") else "random stand-in",
                model_hash=loaded.model_hash, retention=retention, prompts=n_prompts, scene_offset=scene_offset,
                steps=steps, checker_accuracy_base=base_accuracy, rows=rows,
                best_by_ssim=max(rows, key=lambda k: rows[k]["ssim_mean"]),
                best_by_checker=max(rows, key=lambda k: (rows[k]["checker_accuracy"], rows[k]["ssim_mean"])))


def main(argv=None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--choice-prompts", type=int, default=16, help="prompts for score_choice")
    parser.add_argument("--choice-retention", type=float, default=0.64, help="head retention for score_choice")
    parser.add_argument("--report", default=str(OUT), help="JSON file the sections are merged into")
    parser.add_argument("--preset-scene-offset", type=int, default=0,
                        help="first scene seed of builtin_preset's prompts (0: the reported set; 500+: the set presets are chosen on)")
    parser.add_argument("--preset-prompts", type=int, default=48,
                        help="prompts (one seed each) for builtin_preset's checker accuracy, base vs fragment")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.report)
    report = json.loads(out.read_text()) if out.is_file() else {}
    report["environment"] = dict(python=platform.python_version(), torch=torch.__version__,
                                 machine=platform.machine(), threads=torch.get_num_threads(),
                                 when_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    funcs = dict(estimate=bench_estimate, sdxl_bytes=bench_sdxl_bytes,
                 builtin_preset=lambda: bench_builtin_preset(n_prompts=args.preset_prompts,
                                                             scene_offset=args.preset_scene_offset),
                 sd15_extract=bench_sd15_extract, score_agreement=bench_score_agreement,
                 score_choice=lambda: bench_score_choice(args.choice_prompts, retention=args.choice_retention))
    for name in args.sections.split(","):
        t = time.perf_counter()
        try:
            report[name] = funcs[name]()
        except Exception as exc:  # keep the other sections' numbers
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
        report[name]["section_seconds"] = round(time.perf_counter() - t, 1)
        print(name, json.dumps(report[name], indent=1)[:3000], flush=True)
        _write(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
