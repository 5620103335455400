"""H4: batch vs sequential generation throughput on this machine, through core.batch.run_batch.

    .venv/bin/python bench/bench_batch.py [--images 8] [--steps 10] [--sizes 1,2,4,8] [--device cpu]

Writes reports/bench_batch.json. Every size generates the same prompts x seeds into a fresh folder after one
warm-up call; throughput = images / wall time of the pipeline calls (PNG writing included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="builtin:shapes")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--sizes", default="1,2,4,8")
    parser.add_argument("--repeats", type=int, default=2, help="runs per size; the fastest counts")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="reports/bench_batch.json")
    args = parser.parse_args(argv)

    import torch

    from core.batch import BatchSettings, build_jobs, run_batch
    from core.loading import load_model

    loaded = load_model(args.model, device=args.device)
    prompts = ["a red circle on the left", "a large blue square at the top", "a small green triangle",
               "a purple circle in the centre"]
    seeds = list(range(max(1, args.images // len(prompts))))
    jobs = build_jobs(prompts, seeds)[: args.images]
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        run_batch(loaded, jobs[:2], Path(tmp) / "warmup", BatchSettings(steps=args.steps, batch_size=2))
        for size in sizes:
            best = None
            for repeat in range(args.repeats):
                out = Path(tmp) / f"b{size}-{repeat}"
                t0 = time.perf_counter()
                summary = run_batch(loaded, jobs, out, BatchSettings(steps=args.steps, batch_size=size))
                wall = time.perf_counter() - t0
                ipm = 60.0 * summary.generated / wall
                best = ipm if best is None else max(best, ipm)
            results.append({"batch_size": size, "images_per_min": round(best, 2)})
            print(f"batch {size}: {best:.1f} images/min", flush=True)
        t0 = time.perf_counter()
        auto = run_batch(loaded, jobs, Path(tmp) / "auto", BatchSettings(steps=args.steps, batch_size="auto"))
        auto_ipm = 60.0 * auto.generated / (time.perf_counter() - t0)
    sequential = next(r["images_per_min"] for r in results if r["batch_size"] == 1)
    best_row = max(results, key=lambda r: r["images_per_min"])
    report = {
        "bench": "batch",
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": {"name": loaded.name, "hash": loaded.model_hash, "trained": bool(loaded.details.get("trained"))},
        "device": args.device,
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "load_average": os.getloadavg(), "platform": platform.platform()},
        "images": len(jobs), "steps": args.steps, "size": "64x64" if loaded.family == "builtin" else None,
        "per_batch_size": results,
        "sequential_images_per_min": sequential,
        "best_batch_size": best_row["batch_size"],
        "best_images_per_min": best_row["images_per_min"],
        "speedup_best_vs_sequential": round(best_row["images_per_min"] / sequential, 3),
        "h4_target_speedup": 1.7,
        "auto": {"images_per_min": round(auto_ipm, 2), "sizing": auto.sizing},
        "note": "Shared 2-core CPU machine (other jobs running): numbers are noisy; a GPU was not available.",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "per_batch_size"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
