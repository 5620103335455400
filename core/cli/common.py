"""Arguments and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import sys

DEFAULT_MODEL = "builtin:shapes"


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"builtin:shapes, a diffusers folder or a .safetensors file (default {DEFAULT_MODEL})")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA when present)")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"], help="weights dtype")
    parser.add_argument("--allow-pickle", action="store_true", help="consent to open .ckpt/.pt pickle files (weights only)")


def add_guidance_arg(parser: argparse.ArgumentParser, extra_help: str = "") -> None:
    parser.add_argument("--guidance", type=float, default=None,
                        help="classifier-free guidance scale (default: the model's recommended value from its "
                        "headroom.json, 5 for builtin:shapes, else 7.5)" + extra_help)


def resolve_device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model_from_args(args):
    from core.loading import load_model

    return load_model(args.model, device=resolve_device(args.device), dtype=args.dtype, allow_pickle=args.allow_pickle)


def parse_int_list(text: str) -> list[int]:
    """'1,2,5-8' -> [1, 2, 5, 6, 7, 8]."""
    from core.errors import HeadRoomError

    values: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else (part, part)
                values.extend(range(int(lo), int(hi) + 1))
            else:
                values.append(int(part))
    except ValueError:
        raise HeadRoomError(f"{text!r} is not a list of integers like 1,2,3 or 1-16.") from None
    if not values:
        raise HeadRoomError("The list of seeds is empty.")
    return values


class TerminalProgress:
    """A one-line progress bar on stderr with counts and ETA (for the CLI only)."""

    def __init__(self, label: str = "") -> None:
        self.label = label
        self._last = -1.0

    def __call__(self, event) -> None:
        import time

        now = time.monotonic()
        if event.done < event.total and now - self._last < 0.2:
            return
        self._last = now
        eta = event.eta_s
        eta_text = f" ETA {eta:5.1f}s" if eta is not None else ""
        width = 24
        filled = int(width * event.fraction)
        bar = "#" * filled + "-" * (width - filled)
        sys.stderr.write(f"\r{self.label}[{bar}] {event.done}/{event.total}{eta_text} {event.message[:40]:<40}")
        if event.done >= event.total:
            sys.stderr.write("\n")
        sys.stderr.flush()
