"""`headroom` command line. Each subcommand lives in its own module exposing `add_parser(subparsers)`.

Modules are imported when the parser is built; they must not import torch/diffusers at module level.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Optional, Sequence

from core.errors import HeadRoomError

SUBCOMMAND_MODULES = (
    "core.cli.generate_cmd",
    "core.cli.models_cmd",
    "core.cli.profile_cmd",
    "core.cli.extract_cmd",
    "core.cli.report_cmd",
    "core.cli.reuse_cmd",
    "core.cli.batch_cmd",
)

EXIT_USER_ERROR = 2
EXIT_CANCELLED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headroom",
        description="Profile, prune and validate attention heads of Stable Diffusion models, offline.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging details")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # that feature is not part of this build
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        result = args.func(args)
    except HeadRoomError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("Cancelled; nothing half-written was left behind.", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
