"""`headroom models inspect|convert`."""

from __future__ import annotations

import json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("models", help="inspect or convert model files")
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION")
    inspect = sub.add_parser("inspect", help="architecture, parameter counts and attention heads of a model")
    inspect.add_argument("model", help="builtin:shapes, a diffusers folder or a .safetensors file")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.add_argument("--allow-pickle", action="store_true", help="consent to open .ckpt/.pt pickle files")
    inspect.set_defaults(func=run_inspect)
    convert = sub.add_parser("convert", help="convert a .ckpt/.pt pickle to .safetensors (weights only)")
    convert.add_argument("source")
    convert.add_argument("--out", help="target .safetensors (default: beside the source)")
    convert.add_argument("--allow-pickle", action="store_true", help="consent to read the pickle (weights_only=True)")
    convert.set_defaults(func=run_convert)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_inspect(args) -> int:
    from core.loading import load_model
    from core.loading.inspect import format_summary, summarize

    loaded = load_model(args.model, allow_pickle=args.allow_pickle)
    summary = summarize(loaded)
    print(json.dumps(summary.to_dict(), indent=2) if args.json else format_summary(summary))
    return 0


def run_convert(args) -> int:
    from pathlib import Path

    from core.errors import CheckpointNotFoundError
    from core.loading.single_file import convert_pickle_to_safetensors

    source = Path(args.source)
    if not source.is_file():
        raise CheckpointNotFoundError(f"No file at {source}.")
    target = Path(args.out) if args.out else source.with_suffix(".safetensors")
    convert_pickle_to_safetensors(source, target, allow_pickle=args.allow_pickle)
    print(f"wrote {target}")
    return 0
