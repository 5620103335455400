"""`Profile`: the statistics of one profiling run, as one `.hrprof` file (safetensors + JSON metadata).

The tensors are running sums and counts (see `recorder.py` for their layout); every statistic is derived on
demand, so the file stays small and exact. The JSON (schema version, model hash, prompts, seeds, steps,
scheduler, dtype, device, timings, modules) lives in the safetensors header under `METADATA_KEY`, so a
profile is read without the model and without loading its tensors first.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.errors import ProfileFileError
from core.profiling.structure import FfnRecord, ModuleRecord

SCHEMA_VERSION = 1
FORMAT_NAME = "headroom-profile"
METADATA_KEY = "headroom.profile"
PROFILE_SUFFIX = ".hrprof"
HALVES = {"uncond": 0, "cond": 1}
HEAD_STATS = ("energy", "energy_var", "token_mass", "token_mass_var", "entropy", "entropy_var")
_SUM_OF = {"energy": "energy", "token_mass": "mass", "entropy": "entropy"}
_REQUIRED = ("energy", "count", "energy_prompt", "prompt_count")


class Profile:
    def __init__(self, meta: dict, tensors: dict) -> None:
        self.meta = meta
        self.tensors = tensors
        self.modules = [ModuleRecord(**m) for m in meta["modules"]]
        self.ffn_modules = [FfnRecord(**f) for f in meta.get("ffn", [])]
        self._by_name = {m.name: m for m in self.modules}

    # -- identity -----------------------------------------------------------------------------------------
    @property
    def model_hash(self) -> str:
        return self.meta["model_hash"]

    @property
    def cfg(self) -> bool:
        return bool(self.meta.get("cfg", True))

    @property
    def cross_modules(self) -> list[ModuleRecord]:
        return [m for m in self.modules if m.kind == "cross"]

    def module(self, name: str) -> ModuleRecord:
        if name not in self._by_name:
            raise KeyError(f"No attention module {name!r} in this profile.")
        return self._by_name[name]

    def check_model(self, loaded) -> None:
        """Raises ProfileFileError when `loaded` (a LoadedModel) is not the model this profile was made with."""
        model_hash = getattr(loaded, "model_hash", loaded)
        if model_hash != self.model_hash:
            raise ProfileFileError(
                f"This profile was made with model {self.meta.get('model_name', '?')} "
                f"(hash {self.model_hash[:12]}...), but the open model has hash {str(model_hash)[:12]}.... "
                "Its head statistics do not apply; profile the open model, or open the model it was made with."
            )

    # -- statistics ---------------------------------------------------------------------------------------
    def head_stat(self, stat: str = "energy", half: str = "cond") -> dict:
        """Per module: a (heads,) float32 tensor. `*_var` = variance across seeds of the per-seed means."""
        import torch

        base, var = (stat[:-4], True) if stat.endswith("_var") else (stat, False)
        if stat not in HEAD_STATS:
            raise ValueError(f"Unknown head statistic {stat!r}; choose one of {', '.join(HEAD_STATS)}.")
        per_seed = self._per_seed(base, half)  # (seeds, columns)
        if var:
            flat = per_seed.var(dim=0, unbiased=True) if per_seed.shape[0] > 1 else torch.zeros_like(per_seed[0])
        else:
            flat = per_seed.mean(dim=0)
        return self._split(flat, cross_only=base != "energy")

    def seed_stat(self, stat: str = "energy", half: str = "cond") -> dict:
        """Per module: (seeds, heads), the mean of each seed over its prompts and steps."""
        return self._split(self._per_seed(stat, half), cross_only=stat != "energy")

    def step_stat(self, stat: str = "energy", half: str = "cond") -> dict:
        """Per module: (buckets, heads), the mean over seeds and prompts at each step bucket (see meta)."""
        sums, counts = self._sums_counts(stat, half)
        per_bucket = sums.sum(0) / counts.sum(0).clamp_min(1e-12).unsqueeze(-1)
        return self._split(per_bucket, cross_only=stat != "energy")

    def prompt_stat(self, half: str = "cond") -> dict:
        """Per module: (prompts, heads) mean energy per prompt over seeds and steps."""
        h = self._half(half)
        sums = self.tensors["energy_prompt"][:, h]
        counts = self.tensors["prompt_count"][:, h].clamp_min(1e-12).unsqueeze(-1)
        return self._split(sums / counts, cross_only=False)

    def token_mass_per_token(self, name: str, prompt: int = 0, half: str = "cond", trim: bool = True):
        """(heads, tokens) mean attention mass of each head on each token of one prompt, and the tokens.

        With trim, only the prompt's own tokens (start, words, end) are kept, not the padding."""
        record = self.module(name)
        if record.kind != "cross":
            raise ValueError(f"{name} is self-attention: it has no per-token mass.")
        if "token_mass_prompt" not in self.tensors:
            raise ValueError("This profile was made without cross-attention statistics.")
        h = self._half(half)
        count = float(self.tensors["prompt_count"][prompt, h])
        sums = self.tensors["token_mass_prompt"][prompt, h, record.cross_offset:record.cross_offset + record.heads]
        mass = sums / max(count, 1e-12)
        tokens = list(self.meta["tokens"][prompt] if half == "cond" else self.meta.get("negative_tokens", []))
        if trim and tokens:
            mass = mass[:, :len(tokens)]
        return mass.clone(), tokens

    def ffn_stat(self, half: str = "cond") -> dict:
        """Per FFN module (`...transformer_blocks.N.ff`): (inner,) mean |GEGLU hidden activation| per neuron."""
        if "ffn" not in self.tensors:
            raise ValueError("This profile was made without FFN statistics (ProfilerConfig.ffn_stats=False).")
        h = self._half(half)
        flat = self.tensors["ffn"][h] / self.tensors["ffn_count"][h].clamp_min(1e-12)
        return {f.name: flat[f.offset:f.offset + f.inner].clone() for f in self.ffn_modules}

    def spatial_map(self, name: str, prompt: int = 0):
        """(heads, tokens, h, w) mean cross-attention probability map of the conditional half, if recorded."""
        key = "map." + name
        if key not in self.tensors:
            raise KeyError(f"No spatial map for {name!r}: record it with ProfilerConfig(spatial_map_modules=[...]).")
        count = float(self.tensors["prompt_count"][prompt, HALVES["cond"]])
        return self.tensors[key][prompt] / max(count, 1e-12)

    def summary_rows(self, half: str = "cond") -> list[dict]:
        energy = self.head_stat("energy", half)
        var = self.head_stat("energy_var", half)
        has_cross = "mass" in self.tensors
        mass = self.head_stat("token_mass", half) if has_cross else {}
        entropy = self.head_stat("entropy", half) if has_cross else {}
        rows = []
        for m in self.modules:
            e = energy[m.name]
            row = {"module": m.name, "kind": m.kind, "heads": m.heads, "head_dim": m.head_dim,
                   "energy_mean": float(e.mean()), "energy_min": float(e.min()), "energy_max": float(e.max()),
                   "energy_cv_across_seeds": float((var[m.name].sqrt() / e.clamp_min(1e-12)).mean())}
            if m.name in mass:
                row["token_mass_mean"] = float(mass[m.name].mean())
                row["entropy_mean"] = float(entropy[m.name].mean())
            rows.append(row)
        return rows

    # -- helpers ------------------------------------------------------------------------------------------
    def _half(self, half: str) -> int:
        if half not in HALVES:
            raise ValueError(f"half must be 'cond' or 'uncond', not {half!r}")
        if half == "uncond" and not self.cfg:
            raise ValueError("This profile ran without classifier-free guidance (guidance <= 1): no uncond half.")
        return HALVES[half]

    def _sums_counts(self, stat: str, half: str):
        key = _SUM_OF.get(stat)
        if key is None:
            raise ValueError(f"Unknown statistic {stat!r}; choose energy, token_mass or entropy.")
        if key not in self.tensors:
            raise ValueError(f"This profile has no {stat!r} statistics (cross-attention stats were off).")
        h = self._half(half)
        return self.tensors[key][:, :, h], self.tensors["count"][:, :, h]

    def _per_seed(self, stat: str, half: str):
        sums, counts = self._sums_counts(stat, half)  # (S, K, N), (S, K)
        return sums.sum(1) / counts.sum(1).clamp_min(1e-12).unsqueeze(-1)

    def _split(self, flat, cross_only: bool) -> dict:
        out = {}
        for m in self.modules:
            if cross_only:
                if m.kind != "cross":
                    continue
                out[m.name] = flat[..., m.cross_offset:m.cross_offset + m.heads].clone()
            else:
                out[m.name] = flat[..., m.offset:m.offset + m.heads].clone()
        return out

    # -- file ---------------------------------------------------------------------------------------------
    def save(self, path) -> Path:
        from core.io import save_safetensors_atomic

        path = Path(path)
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in self.tensors.items()}
        save_safetensors_atomic(tensors, path, metadata={METADATA_KEY: json.dumps(self.meta)})
        return path

    @classmethod
    def load(cls, path) -> Profile:
        path = Path(path)
        if not path.is_file():
            raise ProfileFileError(f"No profile at {path}: the file does not exist.")
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                header = handle.metadata() or {}
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (safe_open has no __iter__)
        except Exception as exc:  # safetensors raises its own error types for every kind of damage
            raise ProfileFileError(
                f"{path} is not a readable profile: {exc}. The file is damaged or truncated, or is not a "
                "HeadRoom profile (.hrprof). Profile the model again to recreate it."
            ) from exc
        if METADATA_KEY not in header:
            raise ProfileFileError(
                f"{path} is a safetensors file but not a HeadRoom profile (no '{METADATA_KEY}' metadata). "
                "Open a .hrprof file written by `headroom profile` or the Profile view."
            )
        try:
            meta = json.loads(header[METADATA_KEY])
        except json.JSONDecodeError as exc:
            raise ProfileFileError(f"{path}: the profile's metadata is damaged ({exc}).") from exc
        cls._validate(path, meta, tensors)
        return cls(meta, tensors)

    @staticmethod
    def _validate(path: Path, meta: dict, tensors: dict) -> None:
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
            raise ProfileFileError(f"{path}: metadata is not a HeadRoom profile's (format {meta.get('format')!r}).")
        version = meta.get("schema_version")
        if version != SCHEMA_VERSION:
            newer = isinstance(version, int) and version > SCHEMA_VERSION
            raise ProfileFileError(
                f"{path} uses profile schema {version!r}; this HeadRoom reads schema {SCHEMA_VERSION}. "
                + ("Update HeadRoom to open it." if newer else "Profile the model again with this version.")
            )
        missing = [k for k in _REQUIRED if k not in tensors] + [k for k in ("modules", "model_hash", "seeds",
                                                                             "prompts") if k not in meta]
        if missing:
            raise ProfileFileError(f"{path}: the profile is incomplete (missing {', '.join(missing)}).")
        total = sum(m["heads"] for m in meta["modules"])
        expected = (len(meta["seeds"]), len(set(meta["step_buckets"])), 2, total)
        if tuple(tensors["energy"].shape) != expected:
            raise ProfileFileError(
                f"{path}: the energy table has shape {tuple(tensors['energy'].shape)}, its metadata promises "
                f"{expected}. The file is inconsistent; profile again."
            )


def build_meta(**fields) -> dict:
    meta = {"format": FORMAT_NAME, "schema_version": SCHEMA_VERSION}
    meta.update(fields)
    return meta


def default_out_path(stem: str | None = None) -> Path:
    return Path((stem or "profile") + PROFILE_SUFFIX)
