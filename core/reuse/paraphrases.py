"""Paraphrase sets for the reuse harness: from the shapes world's generator, or from a user's file.

File formats (UTF-8):
- JSON: a list (or {"sets": [...]}) of {"prompt": "...", "paraphrases": ["...", ...], "fragment": "dir"?}.
  `fragment` (optional, relative to the file) is a fragment folder profiled for `prompt`.
- Text: sets separated by blank lines; the first line of a set is the prompt, each further line a paraphrase;
  lines starting with # are comments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.errors import HeadRoomError


class ParaphraseFileError(HeadRoomError):
    pass


@dataclass
class ParaphraseSet:
    prompt: str
    paraphrases: list[str] = field(default_factory=list)
    fragment: str | None = None


def sets_from_generator(n_sets: int = 5, per_set: int = 4, seed: int = 0, split: str = "train",
                        paraphrase_split: str = "all") -> list[ParaphraseSet]:
    """`n_sets` random scenes of the shapes world: each set is the canonical caption plus `per_set` other
    captions of the same scene (templates and word variants, including held-out phrasings by default)."""
    import numpy as np

    from core.shapes.captions import caption, paraphrases
    from core.shapes.scene import sample_scene

    rng = np.random.default_rng(seed)
    sets, seen = [], set()
    while len(sets) < n_sets:
        scene = sample_scene(rng, split=split)
        prompt = caption(scene)
        if prompt in seen:
            continue
        seen.add(prompt)
        others = [p for p in paraphrases(scene, paraphrase_split) if p != prompt]
        picked = rng.choice(len(others), size=min(per_set, len(others)), replace=False)
        sets.append(ParaphraseSet(prompt, [others[int(i)] for i in picked]))
    return sets


def read_paraphrase_file(path) -> list[ParaphraseSet]:
    from core.io import read_user_text_or_json

    path = Path(path)
    text, data = read_user_text_or_json(path, ParaphraseFileError, "paraphrase file")
    if data is not None:
        if isinstance(data, dict):
            data = data.get("sets")
        if not isinstance(data, list):
            raise ParaphraseFileError(f"{path} must hold a list of sets (or {{\"sets\": [...]}}).")
        sets = []
        for i, item in enumerate(data):
            if not isinstance(item, dict) or not isinstance(item.get("prompt"), str):
                raise ParaphraseFileError(f"{path}: set {i} needs a \"prompt\" string.")
            paras = item.get("paraphrases", [])
            if not isinstance(paras, list) or not all(isinstance(p, str) for p in paras):
                raise ParaphraseFileError(f"{path}: set {i}: \"paraphrases\" must be a list of strings.")
            fragment = item.get("fragment")
            if fragment is not None:
                fragment = str((path.parent / fragment).resolve())
            sets.append(ParaphraseSet(item["prompt"].strip(), [p.strip() for p in paras if p.strip()], fragment))
    else:
        sets, block = [], []
        for line in text.splitlines() + [""]:
            line = line.strip()
            if line.startswith("#"):
                continue
            if line:
                block.append(line)
            elif block:
                sets.append(ParaphraseSet(block[0], block[1:]))
                block = []
    sets = [s for s in sets if s.prompt]
    if not sets or not any(s.paraphrases for s in sets):
        raise ParaphraseFileError(f"{path} holds no paraphrases: each set needs a prompt and at least one paraphrase.")
    return sets
