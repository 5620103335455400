"""`headroom reuse-eval`: the paraphrase pass rate of fragments (hypothesis H3), as a JSON report."""

from __future__ import annotations

import json
import sys

from core.cli.common import add_guidance_arg
from core.errors import HeadRoomError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "reuse-eval",
        help="measure how often a fragment profiled for a prompt still holds up on paraphrases of it",
        description="For each paraphrase set, get the fragment of its prompt (given with --fragment or in the "
        "file, else profiled and extracted now and kept in the fragment cache), then validate it on every "
        "paraphrase against the base model (SSIM, CLIP delta when a CLIP is available) and look the "
        "paraphrase up in the cache. Paraphrase file formats: see core/reuse/paraphrases.py or docs.",
    )
    p.add_argument("--model", default="builtin:shapes")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--paraphrases", metavar="FILE", help="JSON or text file of paraphrase sets")
    source.add_argument("--generator-sets", type=int, default=5, metavar="N",
                        help="draw N sets from the built-in shapes world (default 5)")
    p.add_argument("--per-set", type=int, default=4, help="paraphrases per generated set (default 4)")
    p.add_argument("--generator-seed", type=int, default=0)
    p.add_argument("--fragment", metavar="DIR", help="use this fragment for every set that names none")
    p.add_argument("--cache-dir", metavar="DIR", help="fragment cache folder (default: HEADROOM_CACHE_DIR or the user cache)")
    p.add_argument("--seeds", default="0,1", help="validation seeds (default 0,1)")
    p.add_argument("--steps", type=int, default=10, help="denoising steps for validation and profiling")
    add_guidance_arg(p)
    p.add_argument("--ssim-min", type=float, default=0.7)
    p.add_argument("--clip-delta-max", type=float, default=0.05, help="largest relative CLIP score drop (0.05 = 5%%)")
    p.add_argument("--threshold", type=float, default=None, help="cosine similarity for a cache hit")
    p.add_argument("--prune-percentile", type=float, default=30.0)
    p.add_argument("--similarity", choices=("text-encoder", "clip"), default="text-encoder",
                   help="prompt similarity for lookups: the model's own text encoder (default) or the CLIP "
                   "scorer's text tower")
    p.add_argument("--out", metavar="FILE", help="write the JSON report here (default: print it)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def run(args) -> int:
    from core.batch.jobs import parse_seeds
    from core.cache import FragmentCache
    from core.io import write_json_atomic
    from core.loading import load_model
    from core.loading.model_defaults import guidance_for
    from core.reuse.harness import HarnessConfig, run_reuse_eval
    from core.reuse.lookup import DEFAULT_THRESHOLD
    from core.reuse.paraphrases import read_paraphrase_file, sets_from_generator
    from core.reuse.validate import ReuseTolerance, ValidationSettings

    if args.paraphrases:
        sets = read_paraphrase_file(args.paraphrases)
    else:
        if args.generator_sets < 1:
            raise HeadRoomError("--generator-sets must be at least 1.")
        sets = sets_from_generator(args.generator_sets, args.per_set, args.generator_seed)
    seeds = tuple(parse_seeds(args.seeds))
    base = load_model(args.model, device=args.device)
    validation = ValidationSettings(seeds=seeds, steps=args.steps, guidance=guidance_for(base, args.guidance),
                                    tolerance=ReuseTolerance(args.ssim_min, args.clip_delta_max))
    config = HarnessConfig(validation=validation, threshold=args.threshold or DEFAULT_THRESHOLD,
                           prune_percentile=args.prune_percentile, profile_steps=args.steps, fragment=args.fragment,
                           similarity=args.similarity)
    scorer, status = None, "no CLIP scorer"
    try:
        from core.quality.metrics import clip_scorer_for

        scorer, availability = clip_scorer_for(base, device=args.device)
        status = availability.reason
    except ImportError:
        pass
    cache = FragmentCache(args.cache_dir)

    def on_progress(event):
        print(f"\r[{event.done}/{event.total}] {event.message[:90]:<90}", end="", file=sys.stderr, flush=True)

    report = run_reuse_eval(base, sets, cache, config, scorer=scorer, clip_status=status, progress=on_progress)
    print(file=sys.stderr)
    if args.out:
        write_json_atomic(args.out, report)
    else:
        print(json.dumps(report, indent=2))
    rate = report["paraphrase_pass_rate"]
    print(f"paraphrase pass rate: {rate:.0%} of {report['paraphrases_tested']} paraphrases; "
          f"lookup hit rate {report['lookup_hit_rate']:.0%} (model {base.name}, "
          f"{'trained' if report['model']['trained'] else 'untrained stand-in'})", file=sys.stderr)
    return 0
