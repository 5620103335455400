"""Builds CLIP's `vocab.json`/`merges.txt` from the BPE file that open_clip ships, so no tokenizer is downloaded.

Run `python -m core.loading.tokenizer_files` to regenerate `resources/tokenizers/clip/`.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

VOCAB_SIZE = 49408
_N_MERGES = VOCAB_SIZE - 256 - 256 - 2  # byte symbols, byte symbols + </w>, two special tokens


def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def build_vocab_and_merges(bpe_gz: Path) -> tuple[dict[str, int], list[str]]:
    lines = gzip.open(bpe_gz).read().decode("utf-8").split("\n")
    merges = lines[1 : _N_MERGES + 1]
    symbols = list(_bytes_to_unicode().values())
    vocab_list = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges]
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    if len(vocab_list) != VOCAB_SIZE:
        raise ValueError(f"Expected {VOCAB_SIZE} CLIP tokens, built {len(vocab_list)} from {bpe_gz}")
    return {tok: i for i, tok in enumerate(vocab_list)}, merges


def write_tokenizer_folder(folder: Path, pad_token: str = "<|endoftext|>") -> None:
    from open_clip.tokenizer import default_bpe

    vocab, merges = build_vocab_and_merges(Path(default_bpe()))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    special = {
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": pad_token,
    }
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "do_lower_case": True,
        "errors": "replace",
        "add_prefix_space": False,
        **special,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


if __name__ == "__main__":
    from core.resources import resources_root

    root = resources_root() / "tokenizers"
    write_tokenizer_folder(root / "clip")
    write_tokenizer_folder(root / "clip_pad_bang", pad_token="!")
    print(f"wrote {root}")
