"""Head importance, pluggable: activation-energy rank, cross-attention token mass, ablation / Taylor.

Higher score = more important. Scores are normalised per module (each module's mean is 1, so a percentile
threshold cuts every module relative to its own heads), globally (one scale for all heads), or by rank within
the module (fractions in (0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from core.errors import HeadRoomError
from core.progress import as_sink

METHODS = ("activation_energy_rank", "token_mass", "ablation", "taylor")  # built in; more via register_head_scorer
ALIASES = {"energy": "activation_energy_rank", "mass": "token_mass"}
NORMALIZATIONS = ("module", "global", "rank", "none")


class ScoringError(HeadRoomError):
    pass


@dataclass
class HeadScores:
    values: dict[str, np.ndarray]  # module name -> (heads,) float64
    method: str
    normalize: str
    sources: dict[str, str] = field(default_factory=dict)  # module -> statistic actually used

    def flat(self, structure) -> np.ndarray:
        missing = [n for n in structure.names if n not in self.values]
        if missing:
            raise ScoringError(
                f"The scores do not cover {len(missing)} attention module(s) of this model (e.g. {missing[0]}): "
                "the profile was probably made with a different model. Profile this model again."
            )
        parts = []
        for name, heads in zip(structure.names, structure.heads.tolist()):
            v = np.asarray(self.values[name], dtype=np.float64)
            if v.shape != (heads,):
                raise ScoringError(f"Scores for {name} have {v.size} heads; the model has {heads}.")
            parts.append(v)
        return np.concatenate(parts) if parts else np.zeros(0)


def _to_numpy(t) -> np.ndarray:
    if hasattr(t, "detach"):
        t = t.detach().float().cpu().numpy()
    return np.asarray(t, dtype=np.float64)


def normalize_scores(raw: dict[str, np.ndarray], how: str, groups: dict[str, str] | None = None) -> dict:
    """`groups` maps module -> statistic family; global normalisation divides each family by its own mean."""
    if how not in NORMALIZATIONS:
        raise ScoringError(f"Unknown normalisation {how!r}; choose one of {', '.join(NORMALIZATIONS)}.")
    if how == "none":
        return {k: v.copy() for k, v in raw.items()}
    if how == "module":
        return {k: v / (v.mean() if v.mean() > 0 else 1.0) for k, v in raw.items()}
    if how == "rank":
        out = {}
        for k, v in raw.items():
            r = np.empty(v.size)
            r[np.argsort(v, kind="stable")] = np.arange(1, v.size + 1)
            out[k] = r / v.size
        return out
    groups = groups or {k: "all" for k in raw}
    means = {}
    for fam in set(groups.values()):
        vals = np.concatenate([raw[k] for k in raw if groups[k] == fam])
        means[fam] = vals.mean() if vals.size and vals.mean() > 0 else 1.0
    return {k: v / means[groups[k]] for k, v in raw.items()}


ScorerFn = Callable[..., "tuple[dict[str, np.ndarray], dict[str, str]]"]
_SCORERS: dict[str, ScorerFn] = {}


def register_head_scorer(name: str, *aliases: str):
    """Decorator: `fn(profile, **context) -> (raw scores per module, statistic used per module)`. `context` holds
    pipe, unet, inputs, progress (a ProgressSink) and any extra keyword the caller passed."""

    def wrap(fn: ScorerFn) -> ScorerFn:
        _SCORERS[name] = fn
        for alias in aliases:
            ALIASES[alias] = name
        return fn

    return wrap


def scoring_methods() -> list[str]:
    return sorted(_SCORERS)


@register_head_scorer("activation_energy_rank", "energy")
def _energy(profile, **_):
    raw = {k: _to_numpy(v) for k, v in profile.head_stat("energy").items()}
    return raw, {k: "energy" for k in raw}


@register_head_scorer("token_mass", "mass")
def _token_mass(profile, **_):
    energy = {k: _to_numpy(v) for k, v in profile.head_stat("energy").items()}
    try:
        mass = {k: _to_numpy(v) for k, v in profile.head_stat("token_mass").items()}
    except (KeyError, ValueError) as exc:
        raise ScoringError(f"This profile has no token-mass statistic ({exc}); use the energy score.") from exc
    # Self-attention has no prompt tokens: its heads are scored by energy (global normalisation per family).
    raw = {k: mass.get(k, energy[k]) for k in energy}
    return raw, {k: ("token_mass" if k in mass else "energy") for k in energy}


def _gated(mode: str):
    def scorer(profile, pipe=None, unet=None, inputs=None, progress=None, **kw):
        from core.pruning.ablation import ablation_scores, unet_inputs_from_pipe

        if unet is None:
            if pipe is None:
                raise ScoringError("The ablation score runs the model: pass the loaded pipeline.")
            unet = pipe.unet
            meta = getattr(profile, "meta", {}) or {}
            prompts = list(meta.get("prompts") or ["a photo"])[:4]
            seeds = list(meta.get("seeds") or [0])[:2]
            inputs = unet_inputs_from_pipe(pipe, prompts, seeds)
        if inputs is None:
            raise ScoringError("The ablation score needs UNet inputs (or a pipeline to build them from).")
        raw = ablation_scores(unet, inputs, mode=mode, progress=progress, **kw)
        return raw, {k: ("ablation" if mode == "exact" else "taylor") for k in raw}

    return scorer


register_head_scorer("ablation")(_gated("exact"))
register_head_scorer("taylor")(_gated("taylor"))


def compute_head_scores(profile, method: str = "activation_energy_rank", normalize: str = "module", *,
                        pipe=None, unet=None, inputs=None, progress=None, token=None, **kw) -> HeadScores:
    """Scores from a `core.profiling.Profile` (energy, token mass), by gating heads (ablation, taylor), or by
    any method added with `register_head_scorer`.

    Ablation/Taylor need the model: `pipe` (inputs built from the profile's prompts and seeds), or `unet` plus
    explicit `inputs` (a list of UNet keyword-argument dicts)."""
    method = ALIASES.get(method, method)
    if method not in _SCORERS:
        names = ", ".join(sorted(set(_SCORERS) | set(ALIASES)))
        raise ScoringError(f"Unknown scoring method {method!r}; choose one of {names}.")
    raw, sources = _SCORERS[method](profile, pipe=pipe, unet=unet, inputs=inputs,
                                    progress=as_sink(progress, token), **kw)
    raw = {k: np.asarray(v, dtype=np.float64) for k, v in raw.items()}
    groups = sources if len(set(sources.values())) > 1 else None
    return HeadScores(normalize_scores(raw, normalize, groups), method, normalize, sources)
