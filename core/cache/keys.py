"""Cache keys: base-model hash + reduction settings + prompt-set fingerprint, each canonicalised."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def normalise_prompt(prompt: str) -> str:
    """Case, Unicode form and runs of whitespace do not change what a prompt asks for."""
    text = unicodedata.normalize("NFKC", str(prompt)).lower()
    return re.sub(r"\s+", " ", text).strip()


def prompt_set_fingerprint(prompts: Iterable[str]) -> str:
    """sha256 of the sorted, de-duplicated, normalised prompts: order and spacing do not matter."""
    unique = sorted({normalise_prompt(p) for p in prompts if normalise_prompt(p)})
    return hashlib.sha256("\n".join(unique).encode("utf-8")).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.9g}")  # 0.30000000000000004 and 0.3 are the same setting
    if hasattr(value, "model_dump"):
        return _canonical(value.model_dump())
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return _canonical(asdict(value))
    return value


def reduction_json(settings: Any) -> str:
    return json.dumps(_canonical(settings or {}), sort_keys=True, separators=(",", ":"))


def reduction_fingerprint(settings: Any) -> str:
    return hashlib.sha256(reduction_json(settings).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CacheKey:
    base_model_hash: str
    reduction_fp: str
    prompt_fp: str

    @classmethod
    def make(cls, base_model_hash: str, reduction: Any, prompts: Iterable[str]) -> CacheKey:
        return cls(str(base_model_hash), reduction_fingerprint(reduction), prompt_set_fingerprint(prompts))

    @property
    def entry_id(self) -> str:
        joined = f"{self.base_model_hash}|{self.reduction_fp}|{self.prompt_fp}"
        return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]
