"""The CLIP tokenizers each family needs, from resources/tokenizers (never downloaded)."""

from __future__ import annotations


def load_tokenizers(family: str) -> dict:
    from core.offline import import_transformers
    from core.resources import resource_path

    transformers = import_transformers()
    tokenizers = {"tokenizer": transformers.CLIPTokenizer.from_pretrained(str(resource_path("tokenizers", "clip")))}
    if family == "sdxl":
        tokenizers["tokenizer_2"] = transformers.CLIPTokenizer.from_pretrained(
            str(resource_path("tokenizers", "clip_pad_bang"))
        )
    return tokenizers
