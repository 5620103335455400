"""`headroom profile`: profile a model's attention heads over prompts x seeds x steps into a .hrprof file.

`headroom profile show run.hrprof [--json]` prints a per-module summary of an existing profile.
Ctrl+C stops within one denoising step and writes nothing (the file is only written, atomically, at the end).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from core.cli.common import add_guidance_arg
from core.errors import HeadRoomError

DEFAULT_STEPS = 30


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "profile",
        help="record which attention heads a model uses for your prompts (or: profile show FILE)",
        description="Generate every prompt with every seed and record per-head statistics into a .hrprof file. "
        "Use `headroom profile show FILE` to summarise a profile. Ctrl+C stops cleanly and writes nothing.",
    )
    p.add_argument("--model", default=None, help="builtin:shapes, a diffusers folder or a .safetensors file")
    p.add_argument("--prompt", action="extend", nargs="+", default=[], metavar="TEXT",
                   help="one or more prompts (repeatable)")
    p.add_argument("--prompts-file", default=None, metavar="F", help="text file, one prompt a line (# comments)")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", default=None, help="comma-separated seeds, e.g. 1,2,3 (ranges like 1-8 too)")
    seeds.add_argument("--num-seeds", type=int, default=None, metavar="N", help="use seeds 0..N-1 (default 8)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"denoising steps (default {DEFAULT_STEPS})")
    add_guidance_arg(p, "; <= 1 turns CFG off")
    p.add_argument("--negative-prompt", default="")
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps (default cpu)")
    p.add_argument("--dtype", default=None, help="fp32, fp16 or bf16 (default fp32)")
    p.add_argument("--max-step-buckets", type=int, default=50, help="group more steps than this into buckets")
    p.add_argument("--no-ffn", action="store_true", help="skip FFN neuron statistics")
    p.add_argument("--spatial-maps", nargs="+", default=None, metavar="MODULE",
                   help="cross-attention modules whose per-token spatial maps are recorded")
    p.add_argument("--out", default=None, metavar="FILE", help="the .hrprof file to write (default: profile.hrprof)")
    p.set_defaults(func=run)
    show_parsers = p.add_subparsers(dest="profile_action", metavar="show")
    show = show_parsers.add_parser("show", help="summarise a .hrprof file per module",
                                   description="Print a per-module summary of a profile file.")
    show.add_argument("file", help="a .hrprof file")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument("--half", choices=("cond", "uncond"), default="cond")
    show.set_defaults(func=run_show)


# -- argument parsing helpers --------------------------------------------------------------------------------
def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else (part, part)
                seeds.extend(range(int(lo), int(hi) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise HeadRoomError(f"--seeds must be whole numbers separated by commas (e.g. 1,2,3 or 1-8), not {text!r}.")
    if not seeds:
        raise HeadRoomError("--seeds is empty.")
    if len(set(seeds)) != len(seeds):
        raise HeadRoomError(f"--seeds repeats a seed: {text!r}.")
    return seeds


def read_prompts(args) -> list[str]:
    prompts = list(args.prompt)
    if args.prompts_file:
        path = Path(args.prompts_file)
        if not path.is_file():
            raise HeadRoomError(f"--prompts-file {path} does not exist.")
        text = path.read_text(encoding="utf-8")
        if text.lstrip().startswith("["):
            prompts.extend(str(p) for p in json.loads(text))
        else:
            prompts.extend(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))
    if not prompts:
        raise HeadRoomError("No prompts: give --prompt TEXT (one or more) or --prompts-file F.")
    return prompts


class ProgressBar:
    """A plain-text progress bar on stderr: redrawn in place on a terminal, one line per 10% otherwise."""

    def __init__(self, stream=None, width: int = 28) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_decile = -1

    def __call__(self, event) -> None:
        if event.total <= 0:
            return
        filled = int(self.width * event.fraction)
        eta = event.eta_s
        eta_text = "--:--" if eta is None else time.strftime("%M:%S", time.gmtime(eta)) if eta < 3600 else \
            f"{eta / 3600:.1f} h"
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {event.done}/{event.total} steps  "
                f"ETA {eta_text}  {event.message}")
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(100))
            if event.done >= event.total:
                self.stream.write("\n")
        else:
            decile = int(10 * event.fraction)
            if decile != self._last_decile or event.done >= event.total:
                self._last_decile = decile
                self.stream.write(line + "\n")
        self.stream.flush()


# -- headroom profile ---------------------------------------------------------------------------------------
def run(args) -> int:
    if args.model is None:
        raise HeadRoomError("headroom profile needs --model (e.g. --model builtin:shapes), "
                            "or use `headroom profile show FILE` to read a profile.")
    prompts = read_prompts(args)
    from core.profiling.config import DEFAULT_NUM_SEEDS

    if args.seeds is not None:
        seeds = parse_seeds(args.seeds)
    else:
        n = DEFAULT_NUM_SEEDS if args.num_seeds is None else args.num_seeds
        if n < 1:
            raise HeadRoomError("--num-seeds must be at least 1.")
        seeds = list(range(n))
    if args.steps < 1:
        raise HeadRoomError("--steps must be at least 1.")
    out = Path(args.out or "profile.hrprof")
    if out.is_dir():
        raise HeadRoomError(f"--out {out} is a folder; give a file name such as {out / 'run.hrprof'}.")

    from core.loading import load_model
    from core.loading.model_defaults import guidance_for
    from core.profiling import MemorySampler, ProfilerConfig, profile_model

    print(f"Loading {args.model} ...", file=sys.stderr)
    loaded = load_model(args.model, device=args.device, dtype=args.dtype)
    size = None
    if args.width or args.height:
        default = loaded.pipe.unet.config.sample_size * loaded.pipe.vae_scale_factor
        size = (args.height or default, args.width or default)
    config = ProfilerConfig(ffn_stats=not args.no_ffn, max_step_buckets=args.max_step_buckets,
                            spatial_map_modules=args.spatial_maps)
    print(f"Profiling {len(prompts)} prompt(s) x {len(seeds)} seed(s) x {args.steps} steps on {args.device}",
          file=sys.stderr)
    with MemorySampler(device=args.device) as sampler:
        profile = profile_model(loaded, prompts, seeds=seeds, steps=args.steps,
                                guidance=guidance_for(loaded, args.guidance), size=size,
                                config=config, progress=ProgressBar(), negative_prompt=args.negative_prompt,
                                sampler=None)
    profile.meta["memory"] = sampler.summary()
    profile.save(out)
    t = profile.meta["timings"]
    print(f"Saved {out} ({out.stat().st_size / 1e6:.2f} MB): {len(profile.modules)} attention modules, "
          f"{profile.meta['total_heads']} heads, {t['total_s']:.1f} s.", file=sys.stderr)
    return 0


# -- headroom profile show ----------------------------------------------------------------------------------
_META_KEYS = ("model_name", "model_hash", "family", "prompts", "seeds", "steps", "guidance", "cfg", "height", "width",
              "scheduler", "dtype", "device", "timings", "memory", "total_heads", "cross_heads", "schema_version")


def run_show(args) -> int:
    from core.profiling import Profile

    profile = Profile.load(args.file)
    if args.half == "uncond" and not profile.cfg:
        raise HeadRoomError(f"{args.file} was profiled without guidance: it has no unconditional half.")
    rows = profile.summary_rows(args.half)
    if args.json:
        meta = {k: profile.meta[k] for k in _META_KEYS if k in profile.meta}
        json.dump({"file": str(args.file), "half": args.half, "meta": meta, "modules": rows}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    m = profile.meta
    t = m.get("timings", {})
    print(f"Profile {args.file}")
    print(f"  model     {m.get('model_name')}  ({m.get('family')}, hash {m['model_hash'][:12]})")
    print(f"  prompts   {len(m['prompts'])}: " + "; ".join(p[:40] for p in m["prompts"][:3])
          + (" ..." if len(m["prompts"]) > 3 else ""))
    print(f"  seeds     {m['seeds']}   steps {m['steps']}   guidance {m.get('guidance')}   "
          f"scheduler {m.get('scheduler')}")
    print(f"  device    {m.get('device')} {m.get('dtype')}   took {t.get('total_s', 0):.1f} s "
          f"({t.get('mean_step_s', 0) * 1000:.0f} ms/step)")
    print(f"  heads     {m.get('total_heads')} in {len(profile.modules)} modules   half: {args.half}")
    print()
    header = f"{'module':<58} {'kind':<5} {'heads':>5} {'energy':>8} {'min':>8} {'max':>8} {'seed-cv':>7} " \
             f"{'content':>7} {'entropy':>7}"
    print(header)
    print("-" * len(header))
    for r in rows:
        mass = f"{r['token_mass_mean']:7.3f}" if "token_mass_mean" in r else f"{'':>7}"
        ent = f"{r['entropy_mean']:7.3f}" if "entropy_mean" in r else f"{'':>7}"
        print(f"{r['module']:<58} {r['kind']:<5} {r['heads']:>5} {r['energy_mean']:8.4f} {r['energy_min']:8.4f} "
              f"{r['energy_max']:8.4f} {r['energy_cv_across_seeds']:7.3f} {mass} {ent}")
    return 0
