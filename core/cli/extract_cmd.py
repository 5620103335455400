"""`headroom extract`: cut a fragment (a smaller UNet + manifest) out of a model, from a saved profile.

    headroom extract --model M --profile run.hrprof (--percentile P | --retention R)
        [--score energy|mass|ablation|taylor] [--ffn RATIO] [--low-rank-energy E]
        [--precision fp16|bf16|int8] [--heal-steps N] --out DIR
    headroom extract --model M --profile run.hrprof --preset default --out DIR
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from core.errors import HeadRoomError


def add_parser(subparsers) -> None:
    from core.cli.common import add_model_args

    p = subparsers.add_parser(
        "extract",
        help="prune a model's least-used heads (and optionally FFN neurons, low-rank, precision) into a fragment",
        description="Score attention heads from a profile, remove the weakest ones physically, optionally prune "
        "feed-forward neurons, factorise linear layers and lower precision, and save the result as a fragment "
        "folder (unet.safetensors + manifest.json). Use it with `headroom generate --fragment DIR`.",
    )
    add_model_args(p)
    p.add_argument("--profile", required=True, metavar="FILE", help="a .hrprof file made from this model")
    amount = p.add_mutually_exclusive_group(required=True)
    amount.add_argument("--percentile", type=float, metavar="P",
                        help="remove heads scoring below the P-th percentile (0-100), e.g. 30")
    amount.add_argument("--retention", type=float, metavar="R", help="keep this fraction of heads (0-1], e.g. 0.7")
    amount.add_argument("--threshold", type=float, metavar="T", help="remove heads whose score is below T")
    amount.add_argument("--preset", choices=["default", "balanced", "aggressive"],
                        help="default: keep 70%% of heads (taylor score per module) and heal; balanced: keep 60%% + "
                        "25%% of FFN neurons removed + fp16, healed; aggressive: half the heads + half the FFN "
                        "neurons + int8, healed (other flags override)")
    p.add_argument("--score", default=None, choices=["energy", "mass", "ablation", "taylor"],
                   help="head importance: activation energy (default), cross-attention token mass, "
                   "ablation (runs the model once per head), taylor (first-order ablation, a few passes)")
    p.add_argument("--normalize", default=None, choices=["global", "module", "rank"],
                   help="compare heads across the whole UNet (default without a preset) or within their module")
    p.add_argument("--heal-steps", type=int, default=None, metavar="N",
                   help="distil the fragment towards the base for N steps on the profile's prompts (presets: 300; "
                   "otherwise 0 = off). Needs ~16 bytes per UNet parameter of memory (SD 1.5 ~14 GB)")
    p.add_argument("--heal-lr", type=float, default=None, metavar="LR", help="healing learning rate (default 1e-4)")
    p.add_argument("--min-heads", type=int, default=1, metavar="N", help="heads every attention keeps (default 1)")
    p.add_argument("--drop-empty", action="store_true",
                   help="drop an attention entirely when all its heads fall below the threshold (recorded)")
    p.add_argument("--ffn", type=float, default=None, metavar="RATIO",
                   help="also remove this fraction of feed-forward neurons per block (0-0.9)")
    p.add_argument("--low-rank-energy", type=float, default=None, metavar="E",
                   help="factorise linear layers keeping this fraction of spectral energy (e.g. 0.95), "
                   "only where it saves parameters")
    p.add_argument("--precision", default=None, choices=["fp16", "bf16", "int8"],
                   help="store the fragment in lower precision (int8: 8-bit weight-only linear layers)")
    p.add_argument("--estimate", action="store_true",
                   help="only print what each reduction would remove (heads, FFN, precision); write nothing")
    p.add_argument("--out", metavar="DIR", help="the fragment folder to write (required unless --estimate)")
    p.set_defaults(func=run)


def _prune_config(args):
    from core.pruning.selection import PruneConfig, SelectionError

    try:
        if args.percentile is not None:
            return PruneConfig("percentile", args.percentile, args.min_heads, args.drop_empty)
        if args.retention is not None:
            return PruneConfig("retention", args.retention, args.min_heads, args.drop_empty)
        return PruneConfig("absolute", args.threshold, args.min_heads, args.drop_empty)
    except SelectionError:
        raise
    except ValueError as exc:
        raise HeadRoomError(str(exc)) from exc


def run(args) -> int:
    from core.cli.common import TerminalProgress, load_model_from_args
    from core.fragments.extract import FragmentRequest, extract_fragment
    from core.profiling import Profile
    from core.pruning.extract import ExtractConfig
    from core.pruning.heal import HealConfig

    if args.ffn is not None and not 0.0 <= args.ffn < 0.95:
        raise HeadRoomError(f"--ffn must be between 0 and 0.9 (a fraction of neurons), got {args.ffn}.")
    if args.low_rank_energy is not None and not 0.0 < args.low_rank_energy < 1.0:
        raise HeadRoomError(f"--low-rank-energy must be between 0 and 1 (e.g. 0.95), got {args.low_rank_energy}.")
    if args.preset:
        from core.pruning.presets import PRESETS

        preset = PRESETS[args.preset]
        prune, base_reduce, score = preset["prune"], preset["reduce"], preset["score"]
        normalize, heal = preset["normalize"], preset["heal"]
    else:
        prune, base_reduce, score, normalize, heal = _prune_config(args), ExtractConfig(), "energy", "global", HealConfig()
    try:
        heal = dataclasses.replace(heal, **({} if args.heal_steps is None else {"steps": args.heal_steps}),
                                   **({} if args.heal_lr is None else {"lr": args.heal_lr}))
    except ValueError as exc:
        raise HeadRoomError(f"--heal-steps/--heal-lr: {exc}") from exc
    if not args.estimate and not args.out:
        raise HeadRoomError("Give --out DIR, the fragment folder to write (or --estimate to only see the numbers).")
    out = Path(args.out).expanduser() if args.out else None
    if out is not None and not args.estimate and out.exists() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise HeadRoomError(f"{out} exists and is not a fragment folder; choose an empty or new folder.")
    profile = Profile.load(args.profile)
    print(f"Loading {args.model} ...", file=sys.stderr)
    loaded = load_model_from_args(args)
    request = FragmentRequest(
        prune=prune, score=args.score or score, normalize=args.normalize or normalize, heal=heal,
        reduce=ExtractConfig(
            ffn_ratio=base_reduce.ffn_ratio if args.ffn is None else args.ffn,
            low_rank_energy=args.low_rank_energy if args.low_rank_energy is not None else base_reduce.low_rank_energy,
            precision=args.precision or base_reduce.precision,
        ),
    )
    if args.estimate:
        return _print_estimate(loaded, profile, request)
    manifest = extract_fragment(loaded, profile, out, request, progress=TerminalProgress("extract"))
    size = manifest.size
    p = manifest.pruning
    print(f"Saved fragment {out}")
    print(f"  heads     {p.heads_kept}/{p.heads_total} kept ({1 - p.head_retention_ratio:.1%} removed)"
          + (f", {len(p.attentions_dropped)} attention(s) dropped" if p.attentions_dropped else ""))
    print(f"  size      {size.base_bytes / 1e6:.2f} MB -> {size.fragment_bytes / 1e6:.2f} MB "
          f"({1 - size.fragment_bytes / size.base_bytes:.1%} smaller)")
    for step in size.breakdown:
        if step.bytes_removed or step.params_removed:
            print(f"  {step.reduction:<16} -{step.bytes_removed / 1e6:.2f} MB  ({step.params_removed:,d} values removed)")
    if manifest.healing is not None:
        h = manifest.healing
        print(f"  healed    {h.steps} steps on {len(h.prompts)} prompt(s), loss {h.loss_first:.2e} -> {h.loss_last:.2e}"
              f" ({h.seconds:.0f} s)")
    print(f"  took      {manifest.performance.extraction_seconds:.1f} s")
    return 0


def _print_estimate(loaded, profile, request) -> int:
    from core.pruning.scores import compute_head_scores
    from core.pruning.selection import estimate_reductions, select_heads
    from core.pruning.structure import UnetStructure

    profile.check_model(loaded)
    structure = UnetStructure.from_unet(loaded.unet)
    scores = compute_head_scores(profile, request.score, request.normalize, pipe=loaded.pipe)
    selection = select_heads(scores, request.prune, structure)
    r = request.reduce
    est = estimate_reductions(selection, structure, r.ffn_ratio, r.precision, r.int8_rest_dtype)
    print(f"Estimate for {loaded.name} (nothing written)")
    print(f"  heads     {selection.heads_kept}/{selection.heads_total} kept "
          f"({1 - selection.retention_ratio:.1%} removed)"
          + (f", {len(selection.dropped)} attention(s) dropped" if selection.dropped else ""))
    print(f"  size      {est['base_bytes'] / 1e6:.2f} MB -> {est['fragment_bytes'] / 1e6:.2f} MB "
          f"({est['bytes_fraction_removed']:.1%} smaller)")
    for step in est["breakdown"]:
        if step["bytes_removed"]:
            print(f"  {step['reduction']:<16} -{step['bytes_removed'] / 1e6:.2f} MB")
    if r.low_rank_energy:
        print("  low_rank         not estimated (needs the singular values: run without --estimate)")
    return 0
