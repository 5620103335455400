"""`headroom batch`: many seeds of many prompts, in batches, with progress, cancel (Ctrl+C) and a summary."""

from __future__ import annotations

import signal
import sys

from core.cli.common import add_guidance_arg
from core.errors import CancelledError, HeadRoomError

EXIT_CANCELLED = 130


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "batch",
        help="generate every prompt of a file with every seed of a range, in batches",
        description="Generate images for prompts x seeds. Ctrl+C stops after the current step and keeps "
        "finished images; running the same command again continues where it stopped.",
    )
    p.add_argument("--model", default="builtin:shapes", help="builtin:shapes, a diffusers folder or a .safetensors file")
    p.add_argument("--fragment", default=None, metavar="DIR", help="a fragment folder to apply to the model")
    p.add_argument("--prompts-file", required=True, metavar="F", help="text file, one prompt a line (or a JSON list)")
    p.add_argument("--seeds", default="1-4", help="seeds, e.g. 1-16 or 1,5,9 (default 1-4)")
    p.add_argument("--batch-size", default="auto", metavar="auto|N",
                   help="images per pipeline call; auto measures and backs off on out-of-memory (default auto)")
    p.add_argument("--max-auto-batch", type=int, default=8, help="largest size auto may choose (default 8)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the PNGs and summary.json")
    p.add_argument("--steps", type=int, default=20)
    add_guidance_arg(p)
    p.add_argument("--negative-prompt", default="")
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default=None, help="fp32, fp16 or bf16")
    p.add_argument("--overwrite", action="store_true", help="make images again even if they are already in --out")
    p.set_defaults(func=run)


def _batch_size(text: str):
    if str(text).lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise HeadRoomError(f"--batch-size must be 'auto' or a whole number, not {text!r}.") from None
    if value < 1:
        raise HeadRoomError(f"--batch-size must be at least 1, not {value}.")
    return value


def apply_fragment_to(loaded, fragment_dir) -> str:
    """Applies a fragment folder to `loaded.pipe`; returns the name to record in the images."""
    from pathlib import Path

    try:
        from core.fragments import apply_fragment
    except ImportError:
        raise HeadRoomError(
            "This build of HeadRoom cannot apply fragments yet (core.fragments is missing). Run without --fragment."
        ) from None
    path = Path(fragment_dir)
    if not path.is_dir():
        raise HeadRoomError(f"No fragment folder at {path}.")
    apply_fragment(loaded.pipe, path, loaded.model_hash)
    return path.name


def run(args) -> int:
    from core.batch import BatchSettings, build_jobs, parse_seeds, read_prompts_file, run_batch
    from core.progress import CancelToken

    batch_size = _batch_size(args.batch_size)
    prompts = read_prompts_file(args.prompts_file)
    seeds = parse_seeds(args.seeds)
    jobs = build_jobs(prompts, seeds, args.negative_prompt)

    from core.loading import load_model
    from core.loading.model_defaults import guidance_for

    loaded = load_model(args.model, device=args.device, dtype=args.dtype)
    fragment = apply_fragment_to(loaded, args.fragment) if args.fragment else None
    settings = BatchSettings(
        steps=args.steps, guidance=guidance_for(loaded, args.guidance), batch_size=batch_size,
        max_auto_batch=args.max_auto_batch,
        width=args.width, height=args.height, skip_existing=not args.overwrite, fragment=fragment,
    )
    token = CancelToken()

    def on_sigint(_signum, _frame):
        if token.cancelled:
            raise KeyboardInterrupt
        print("\nStopping after the current step (Ctrl+C again to abort now)...", file=sys.stderr)
        token.cancel()

    def on_progress(event):
        print(f"\r{event.message}   ", end="", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        summary = run_batch(loaded, jobs, args.out, settings, progress=on_progress, token=token)
    except CancelledError as exc:
        print(f"\n{exc}", file=sys.stderr)
        return EXIT_CANCELLED
    finally:
        signal.signal(signal.SIGINT, previous)
    print(
        f"\n{summary.done} images in {args.out} ({summary.generated} generated, "
        f"{summary.images_per_minute():.1f} images/min, final batch size {summary.sizing.get('final')}).",
        file=sys.stderr,
    )
    return 0
