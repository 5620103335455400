"""What a batch is made of: prompts x seeds, in a stable order, read from what a user types or saves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import HeadRoomError


class BatchInputError(HeadRoomError):
    pass


MAX_SEEDS = 100_000


@dataclass(frozen=True)
class BatchJob:
    index: int  # position in the whole batch: images are numbered by it
    prompt: str
    seed: int
    negative_prompt: str = ""

    @property
    def filename(self) -> str:
        return f"{self.index:05d}-seed{self.seed}.png"


def parse_seeds(text: str) -> list[int]:
    """`"1-16"`, `"3,7,9"`, `"1-4,10,20-22"` -> seeds in the order given, duplicates dropped."""
    seeds: list[int] = []
    seen: set[int] = set()
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part[1:]:
                cut = part.index("-", 1)
                lo, hi = int(part[:cut]), int(part[cut + 1 :])
                if hi < lo:
                    raise BatchInputError(f"Seed range {part!r} runs backwards; write it as {hi}-{lo}.")
                values = range(lo, hi + 1)
            else:
                values = [int(part)]
        except ValueError:
            raise BatchInputError(
                f"Could not read seeds {text!r}: {part!r} is not a number or a range. Use e.g. 1-16 or 1,5,9."
            ) from None
        if len(values) > MAX_SEEDS:
            raise BatchInputError(f"Seed range {part!r} has {len(values)} seeds; at most {MAX_SEEDS} per batch.")
        for seed in values:
            if seed < 0 or seed >= 2**63:
                raise BatchInputError(f"Seed {seed} is out of range: seeds are whole numbers from 0 to 2^63-1.")
            if seed not in seen:
                seen.add(seed)
                seeds.append(seed)
    if not seeds:
        raise BatchInputError(f"No seeds in {text!r}. Use e.g. 1-16 or 1,5,9.")
    return seeds


def read_prompts_file(path) -> list[str]:
    """A text file (one prompt a line; blank lines and lines starting with # are skipped) or a JSON file
    holding a list of strings, or a list of objects with a "prompt" field."""
    from core.io import read_user_text_or_json

    path = Path(path)
    text, data = read_user_text_or_json(path, BatchInputError, "prompts file (one prompt a line)")
    if data is not None:
        if not isinstance(data, list):
            raise BatchInputError(f"{path} must hold a JSON list of prompts, found a {type(data).__name__}.")
        prompts = []
        for i, item in enumerate(data):
            if isinstance(item, dict) and isinstance(item.get("prompt"), str):
                item = item["prompt"]
            if not isinstance(item, str):
                raise BatchInputError(f"{path}: entry {i} is not a prompt string (found {item!r}).")
            prompts.append(item.strip())
        prompts = [p for p in prompts if p]
    else:
        prompts = [line.strip() for line in text.splitlines()]
        prompts = [p for p in prompts if p and not p.startswith("#")]
    if not prompts:
        raise BatchInputError(f"{path} holds no prompts. Write one prompt a line.")
    return prompts


def build_jobs(prompts: list[str], seeds: list[int], negative_prompt: str = "") -> list[BatchJob]:
    """Every prompt with every seed, prompt-major: all seeds of the first prompt come first."""
    jobs = []
    for prompt in prompts:
        for seed in seeds:
            jobs.append(BatchJob(len(jobs), prompt, int(seed), negative_prompt))
    return jobs
