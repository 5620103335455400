"""Quality and speed of the built-in model `builtin:shapes`, on held-out prompts. Writes reports/builtin_quality.json
and a sample grid reports/builtin_samples.png.

    .venv/bin/python bench/bench_builtin.py            # full measurement (several minutes on 2 busy cores)
    .venv/bin/python bench/bench_builtin.py --quick    # fewer prompts

Targets (issue 3): colour+shape accuracy >= 0.85 at 20 steps; tiny-CLIP top-1 >= 0.90; colour-token attention
mass inside the object mask >= 0.5; median latency of one 64x64 image at 20 steps <= 1.5 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def sample_grid(images, columns: int = 8):
    import numpy as np
    from PIL import Image

    rows = [np.concatenate(list(images[i : i + columns]), axis=1) for i in range(0, len(images) - columns + 1, columns)]
    return Image.fromarray(np.concatenate(rows, axis=0)).resize((columns * 128, len(rows) * 128), Image.NEAREST)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--guidance", type=float, default=None,
                        help="guidance scale (default: the model's recommended value, 5 for builtin:shapes)")
    parser.add_argument("--out", default=str(ROOT / "reports" / "builtin_quality.json"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: two spin against each other on shared cores)")
    parser.add_argument("--model", default="builtin:shapes", help="another export of the recipe (a diffusers folder) to compare")
    parser.add_argument("--skip-clip", action="store_true", help="generation, attention and latency only")
    parser.add_argument("--prompt-seeds", default="123,7,11,19",
                        help="seeds of the held-out prompt sets, 72 prompts each (--quick: 24), pooled "
                        "(default 123,7,11,19: the model card's 288 prompts)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from core.builtin import evaluation
    from core.builtin.tiny_clip import load_tiny_clip
    from core.loading import load_model
    from core.loading.model_defaults import guidance_for

    started = time.time()
    loaded = load_model(args.model)
    args.guidance = guidance_for(loaded, args.guidance)
    prompt_seeds = [int(s) for s in args.prompt_seeds.split(",")]
    pipe = loaded.pipe
    n_single, n_two = (16, 8) if args.quick else (48, 24)
    report = {"model": args.model, "model_hash": loaded.model_hash, "trained": loaded.details.get("trained"),
              "load_average": os.getloadavg(), "torch_threads": args.threads}
    training_json = Path(loaded.details.get("path", "")) / "training.json"  # builtin:shapes is a folder too
    if training_json.is_file():
        import json

        report["training"] = json.loads(training_json.read_text())
    per_set, sample_images = {}, None
    for prompt_seed in prompt_seeds:
        prompt_set = evaluation.heldout_prompt_set(n_single=n_single, n_two=n_two, seed=prompt_seed)
        per_set[prompt_seed], images = evaluation.evaluate_generation(pipe, prompt_set, guidance=args.guidance)
        if sample_images is None:
            sample_images = images
        print(f"prompt set {prompt_seed}: colour+shape {per_set[prompt_seed]['colour_shape_accuracy']:.3f}")
    report["prompt_seeds"] = prompt_seeds
    report["generation"] = evaluation.pool_generation(per_set)
    report["generation_by_set"] = per_set
    print(f"generation at guidance {args.guidance:g}: colour+shape {report['generation']['colour_shape_accuracy']:.3f} "
          f"(+position {report['generation']['colour_shape_position_accuracy']:.3f}; requested objects present, "
          f"extras ignored {report['generation']['requested_present_rate']:.3f}) on {report['generation']['n']} prompts")
    for kind, row in report["generation"]["by_kind"].items():
        print(f"  {kind}: {row['colour_shape_accuracy']:.3f} (n={row['n']})")
    samples = Path(args.out).with_name(Path(args.out).stem.replace("quality", "samples") + ".png")
    samples.parent.mkdir(exist_ok=True)
    sample_grid(sample_images[:32]).save(samples)

    if not args.skip_clip:
        model, preprocess, tokenizer = load_tiny_clip()
        n_clip = 100 if args.quick else 300
        report["clip"] = {split: evaluation.evaluate_clip_ranking(model, preprocess, tokenizer, n=n_clip, split=split)
                          for split in ("heldout", "train")}
        print("tiny CLIP top-1:", {k: v["top1"] for k, v in report["clip"].items()})

    report["attention"] = evaluation.evaluate_attention_mass(pipe, n=8 if args.quick else 24, guidance=args.guidance)
    print("colour-token attention mass inside mask:", report["attention"])

    report["latency"] = evaluation.latency(pipe, runs=5 if args.quick else 9)
    print(f"latency: median {report['latency']['median_s']:.3f} s (20 steps, 64x64)")
    report["load_average_after"] = os.getloadavg()
    report["bench_seconds"] = round(time.time() - started, 1)

    from core.io import write_json_atomic

    write_json_atomic(args.out, report)
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
