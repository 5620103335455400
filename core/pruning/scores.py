"""Head importance, pluggable: activation-energy rank, cross-attention token mass, ablation / Taylor.

Higher score = more important. Scores are normalised per module (each module's mean is 1, so a percentile
threshold cuts every module relative to its own heads), globally (one scale for all heads), or by rank within
the module (fractions in (0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.errors import HeadRoomError
from core.progress import as_sink

METHODS = ("activation_energy_rank", "token_mass", "ablation", "taylor")
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


def compute_head_scores(profile, method: str = "activation_energy_rank", normalize: str = "module", *,
                        pipe=None, unet=None, inputs=None, progress=None, token=None, **ablation_kw) -> HeadScores:
    """Scores from a `core.profiling.Profile` (energy, token mass), or by gating heads (ablation, taylor).

    Ablation/Taylor need the model: `pipe` (inputs built from the profile's prompts and seeds), or `unet` plus
    explicit `inputs` (a list of UNet keyword-argument dicts)."""
    method = ALIASES.get(method, method)
    if method not in METHODS:
        raise ScoringError(f"Unknown scoring method {method!r}; choose one of energy, mass, ablation, taylor.")
    if method == "activation_energy_rank":
        raw = {k: _to_numpy(v) for k, v in profile.head_stat("energy").items()}
        return HeadScores(normalize_scores(raw, normalize), method, normalize, {k: "energy" for k in raw})
    if method == "token_mass":
        energy = {k: _to_numpy(v) for k, v in profile.head_stat("energy").items()}
        try:
            mass = {k: _to_numpy(v) for k, v in profile.head_stat("token_mass").items()}
        except (KeyError, ValueError) as exc:
            raise ScoringError(f"This profile has no token-mass statistic ({exc}); use the energy score.") from exc
        # Self-attention has no prompt tokens: its heads are scored by energy, normalised within its family.
        raw = {k: mass.get(k, energy[k]) for k in energy}
        sources = {k: ("token_mass" if k in mass else "energy") for k in energy}
        if normalize == "global":
            return HeadScores(normalize_scores(raw, "global", sources), method, normalize, sources)
        return HeadScores(normalize_scores(raw, normalize), method, normalize, sources)
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
    raw = ablation_scores(unet, inputs, mode="exact" if method == "ablation" else "taylor",
                          progress=as_sink(progress, token), **ablation_kw)
    return HeadScores(normalize_scores(raw, normalize), method, normalize, {k: method for k in raw})
