"""`headroom report`: base model vs fragment on the same prompts and seeds -> versioned JSON + HTML,
a readable table, H1-H5 verdicts, an optional regression gate, and the fragment manifest's quality_eval /
performance sections filled in."""

from __future__ import annotations

import argparse
import sys

from core.cli.common import add_guidance_arg

EXIT_DRIFTED = 1


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="measure a fragment against its base model and write the metrics report",
        description="Generates the same prompts and seeds with the base model and the fragment, measures "
                    "quality (CLIP, SSIM, pHash, LPIPS when available) and performance (latency, throughput, "
                    "peak memory, weights, break-even), judges hypotheses H1-H5, and writes a JSON report plus "
                    "a self-contained HTML summary. With --baseline, exits 1 when metrics drifted.")
    p.add_argument("--model", default="builtin:shapes", help="base model (default: builtin:shapes)")
    p.add_argument("--fragment", required=True, metavar="DIR", help="fragment folder made by `headroom extract`")
    p.add_argument("--out", required=True, metavar="FILE.json", help="report path, e.g. reports/NAME.json")
    p.add_argument("--html", metavar="FILE.html", help="HTML summary path (default: next to --out)")
    p.add_argument("--prompts-file", metavar="FILE", help="one prompt per line, or a JSON list of strings")
    p.add_argument("--prompt", action="append", default=[], help="a prompt (repeatable)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default: 0 1)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default 8; fragment manifest's if set)")
    add_guidance_arg(p)
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--dtype", default=None, help="fp32 (default), fp16 or bf16")
    p.add_argument("--latency-repeats", type=int, default=3)
    p.add_argument("--max-batch", type=int, default=None,
                   help="largest batch size tried (1, 2, 4, ... until out of memory; default 8 on a CPU, 64 on a GPU)")
    p.add_argument("--no-perf", action="store_true", help="quality only: skip latency/throughput/memory")
    p.add_argument("--clip-weights", metavar="FILE", help="local open_clip checkpoint for the CLIP score")
    p.add_argument("--clip-model", metavar="NAME", help="open_clip model name of --clip-weights (default ViT-L-14)")
    p.add_argument("--clip-config", metavar="FILE.json", help="open_clip model config for a custom --clip-model")
    p.add_argument("--lpips-weights", metavar="FILE", help="local LPIPS backbone weights")
    p.add_argument("--reuse-eval", metavar="FILE", help="JSON written by `headroom reuse-eval` (H3)")
    p.add_argument("--profile-seconds", type=float, help="time spent profiling (default: from the manifest)")
    p.add_argument("--extract-seconds", type=float, help="time spent extracting (default: from the manifest)")
    p.add_argument("--baseline", metavar="OLD.json", help="earlier report to compare with (regression gate)")
    p.add_argument("--tolerance", action="append", default=[], metavar="METRIC=VALUE[%]",
                   help="override a regression tolerance (repeatable)")
    p.add_argument("--no-manifest-update", action="store_true",
                   help="do not write quality_eval / performance into the fragment's manifest")
    p.set_defaults(func=run)


def _progress_printer(stream):
    def show(event):
        print(f"[{event.done}/{event.total}] {event.message}", file=stream, flush=True)

    return show


def run(args: argparse.Namespace) -> int:
    from core.errors import HeadRoomError
    from core.quality.evaluate import DEFAULT_SEEDS, EvalConfig
    from core.quality.metrics import clip_scorer_for
    from core.quality.perf import GenerationSettings
    from core.quality.scene_check import builtin_prompt_scenes, scene_from_prompt
    from core.report.fragment_source import open_fragment
    from core.report.regression import load_report, parse_tolerance_overrides
    from core.report.run import (
        ReportInputs,
        read_prompts_file,
        read_reuse_eval,
        run_report,
        write_report_files,
    )
    from core.report.table import format_report

    if not str(args.out).endswith(".json"):
        raise HeadRoomError(f"--out {args.out!r}: the report is JSON; give a path ending in .json.")
    tolerances = parse_tolerance_overrides(args.tolerance)
    # Bad paths fail now, before minutes of model loading and generation.
    if args.baseline:
        load_report(args.baseline)
    if args.reuse_eval:
        read_reuse_eval(args.reuse_eval)
    prompts = list(args.prompt)
    if args.prompts_file:
        prompts += read_prompts_file(args.prompts_file)
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise HeadRoomError(f"--device {args.device}: no CUDA GPU is available here; use --device cpu.")

    from core.loading import load_model
    from core.loading.model_defaults import guidance_for

    loaded = load_model(args.model, device=args.device, dtype=args.dtype)
    fragment = open_fragment(loaded, args.fragment)
    if not prompts and fragment.prompts:
        prompts = list(fragment.prompts)  # what the fragment was profiled on
    if not prompts and loaded.family == "builtin":
        prompts, _ = builtin_prompt_scenes()  # captions of known scenes
    # Built-in model: prompts in the shapes world's words are judged by the scene checker too.
    scenes = [scene_from_prompt(p) for p in prompts] if loaded.family == "builtin" else None
    if not prompts:
        raise HeadRoomError("No prompts: give --prompt TEXT or --prompts-file FILE.")
    scorer, clip_status = clip_scorer_for(loaded, args.clip_model, args.clip_weights, args.clip_config,
                                          device=args.device)
    steps = args.steps or fragment.steps or 8
    config = EvalConfig(prompts=prompts, seeds=args.seeds or list(DEFAULT_SEEDS),
                        settings=GenerationSettings(steps=steps, guidance=guidance_for(loaded, args.guidance)),
                        latency_repeats=args.latency_repeats,
                        max_batch=args.max_batch or (64 if args.device.startswith("cuda") else 8),
                        measure_performance=not args.no_perf, scenes=scenes)
    inputs = ReportInputs(
        model={"spec": args.model, "name": loaded.name, "family": loaded.family, "hash": loaded.model_hash,
               "source": loaded.source, "trained": loaded.details.get("trained")},
        fragment=fragment.info, config=config, device=args.device, heads_removed=fragment.heads_removed,
        profile_s=args.profile_seconds, extract_s=args.extract_seconds, reuse_eval_path=args.reuse_eval,
        baseline_path=args.baseline, tolerances=tolerances, lpips_weights=args.lpips_weights)
    report, evaluation = run_report(loaded.pipe, fragment.pipe, inputs, scorer=scorer, clip_status=clip_status,
                                    progress=_progress_printer(sys.stderr))
    json_path, html_path = write_report_files(report, evaluation, args.out, args.html)
    print(format_report(report))
    print(f"\nReport: {json_path}\nSummary: {html_path}")
    if not args.no_manifest_update:
        where = fragment.write_quality(report, json_path)
        print(f"Fragment manifest updated: {where}")
    drifted = report.get("regression", {}).get("drifted", [])
    if drifted:
        print(f"\nRegression gate FAILED: {len(drifted)} metric(s) drifted past their tolerance:", file=sys.stderr)
        for d in drifted:
            print(f"  {d['metric']}: {d['baseline']} -> {d['current']} ({d['why']})", file=sys.stderr)
        return EXIT_DRIFTED
    return 0
