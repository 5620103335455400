"""`headroom generate`: one image with its parameters in the PNG's `parameters` chunk."""

from __future__ import annotations

from core.cli.common import TerminalProgress, add_guidance_arg, add_model_args, load_model_from_args


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("generate", help="generate an image (optionally with a fragment)")
    add_model_args(parser)
    parser.add_argument("--fragment", help="a fragment folder to generate with instead of the full UNet")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--negative-prompt", default="")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20)
    add_guidance_arg(parser)
    parser.add_argument("--size", help="WxH, e.g. 512x512 (default: the model's native size)")
    parser.add_argument("--out", required=True, help="output PNG path")
    parser.set_defaults(func=run)


def run(args) -> int:
    from core.errors import HeadRoomError
    from core.generation import generate_images, parse_size, save_png_with_parameters
    from core.loading.model_defaults import guidance_for

    if args.steps < 1:
        raise HeadRoomError("--steps must be at least 1.")
    if not args.out.lower().endswith(".png"):
        raise HeadRoomError(f"--out {args.out!r}: the output must be a .png file (it carries the parameters chunk).")
    loaded = load_model_from_args(args)
    fragment_name = ""
    if args.fragment:
        from core.fragments import apply_fragment

        apply_fragment(loaded, args.fragment)
        fragment_name = str(args.fragment)
    size = parse_size(args.size, default=None) if args.size else None
    [(image, params)] = generate_images(
        loaded.pipe, [args.prompt], [args.seed], steps=args.steps, guidance=guidance_for(loaded, args.guidance),
        size=size,
        negative_prompt=args.negative_prompt, progress=TerminalProgress("generate "), model_name=loaded.name,
        model_hash=loaded.model_hash,
    )
    params.fragment = fragment_name
    path = save_png_with_parameters(args.out, image, params)
    print(f"wrote {path} ({params.width}x{params.height}, seed {params.seed}, {params.steps} steps)")
    return 0
