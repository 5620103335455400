"""Benchmark of the quality/report pipeline; writes reports/bench_quality.json.

1. Cost of one metric per image pair: SSIM and pHash at 64x64 (built-in) and 512x512 (SD 1.5).
   Targets: SSIM <= 50 ms and pHash <= 20 ms per 512x512 pair (a 64-sample report spends < 5 s on them).
2. CLIP scoring speed on the CPU: a tiny random open_clip model and a ViT-B-32-architecture one (random
   weights, 224 px; what a user's real local CLIP costs). Target: ViT-B-32 >= 5 images/s on 2 cores.
3. Peak-memory method sanity: the measured increase for a batch of 4 is larger than for a batch of 1.
4. A whole report (`run_report`) on builtin:shapes, 4 prompts x 2 seeds, 8 steps, with performance.
   Target: <= 120 s on 2 shared cores.

    .venv/bin/python bench/bench_quality.py [--skip-vit] [--skip-report] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def per_call_ms(fn, repeats: int) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def bench_metrics() -> dict:
    import numpy as np

    from core.quality.metrics import phash_distance, ssim

    out = {}
    rng = np.random.default_rng(0)
    for side in (64, 512):
        a = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        b = np.clip(a.astype(int) + rng.integers(-8, 9, a.shape), 0, 255).astype(np.uint8)
        out[f"ssim_ms_{side}"] = round(per_call_ms(lambda a=a, b=b: ssim(a, b), 5), 3)
        out[f"phash_ms_{side}"] = round(per_call_ms(lambda a=a, b=b: phash_distance(a, b), 5), 3)
    out["targets"] = {"ssim_ms_512": 50, "phash_ms_512": 20}
    out["pass"] = out["ssim_ms_512"] <= 50 and out["phash_ms_512"] <= 20
    return out


def bench_clip(skip_vit: bool) -> dict:
    import numpy as np
    import open_clip
    import torch
    from quality_clip_helpers import TINY_CLIP_NAME, write_tiny_clip

    from core.quality.metrics import ClipScorer

    rng = np.random.default_rng(0)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        config, weights = write_tiny_clip(Path(tmp))
        scorer = ClipScorer.from_local_weights(TINY_CLIP_NAME, weights, config)
        images = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(16)]
        prompts = ["a red circle"] * 16
        ms = per_call_ms(lambda: scorer.score(images, prompts), 3)
        out["tiny_images_per_s"] = round(16 / ms * 1000, 1)
        if not skip_vit:
            torch.manual_seed(0)
            model = open_clip.create_model("ViT-B-32", pretrained=None)
            path = Path(tmp) / "vitb32.pt"
            torch.save(model.state_dict(), path)
            del model
            vit = ClipScorer.from_local_weights("ViT-B-32", path)
            images = [rng.integers(0, 256, (512, 512, 3), dtype=np.uint8) for _ in range(8)]
            ms = per_call_ms(lambda: vit.score(images, ["a red circle"] * 8), 2)
            out["vit_b32_images_per_s"] = round(8 / ms * 1000, 2)
            out["target_vit_b32_images_per_s"] = 5
            out["pass"] = out["vit_b32_images_per_s"] >= 5
    return out


def bench_peak_memory() -> dict:
    from core.loading import load_model
    from core.quality.memory import MB, measure_peak_memory
    from core.quality.perf import GenerationSettings, generate

    pipe = load_model("builtin:shapes").pipe
    settings = GenerationSettings(steps=4)
    generate(pipe, ["a red circle"], [0], settings)
    out = {}
    for batch in (1, 4):
        runs = []
        for _ in range(3):
            with measure_peak_memory("cpu") as peak:
                generate(pipe, ["a red circle"] * batch, list(range(batch)), settings)
            runs.append(peak.increase_bytes / MB)
        out[f"increase_mb_batch{batch}"] = [round(r, 2) for r in runs]
    out["pass"] = min(out["increase_mb_batch4"]) > max(out["increase_mb_batch1"])
    return out


def bench_report() -> dict:
    from core.loading import load_model
    from core.pruning.surgery import prune_heads
    from core.quality.evaluate import EvalConfig
    from core.quality.perf import GenerationSettings
    from core.report.fragment_source import pipeline_with_unet
    from core.report.run import ReportInputs, run_report

    loaded = load_model("builtin:shapes")
    unet = copy.deepcopy(loaded.pipe.unet)
    prune_heads(unet, {n: list(range(m.heads // 2, m.heads)) for n, m in unet.named_modules()
                       if n.endswith("attn2") and getattr(m, "heads", 0) >= 2})
    fragment = pipeline_with_unet(loaded.pipe, unet)
    inputs = ReportInputs(model={"name": loaded.name}, fragment={"path": "bench"},
                          config=EvalConfig(settings=GenerationSettings(steps=8)))
    start = time.perf_counter()
    report, _ = run_report(loaded.pipe, fragment, inputs)
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "samples": report["quality"]["samples"], "target_s": 120,
            "pass": seconds <= 120, "metrics": report["metrics"],
            "verdicts": {h["id"]: h["verdict"] for h in report["hypotheses"]}}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-vit", action="store_true")
    parser.add_argument("--skip-report", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    result = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                          "threads": args.threads, "platform": platform.platform()},
              "metrics": bench_metrics(), "clip": bench_clip(args.skip_vit), "peak_memory": bench_peak_memory()}
    if not args.skip_report:
        result["report"] = bench_report()
    out = ROOT / "reports" / "bench_quality.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
