"""Feed-forward neuron pruning in the transformer blocks, scored from the profile.

A hidden neuron's importance = its mean |activation| (profile.ffn_stat(), cond half) times the norm of its
outgoing weights (column of `net.2`): what it actually adds to the block's output. Each FFN loses the same
fraction of its neurons; kept counts are rounded to multiples of 8 where possible (tensor cores).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import HeadRoomError
from core.pruning.structure import ff_modules


class FfnSelectionError(HeadRoomError):
    pass


@dataclass
class FfnSelection:
    kept: dict[str, np.ndarray]  # ff module name -> bool (inner,)

    def removed(self) -> dict[str, list[int]]:
        return {n: np.flatnonzero(~k).tolist() for n, k in self.kept.items() if not k.all()}

    @property
    def neurons_total(self) -> int:
        return int(sum(k.size for k in self.kept.values()))

    @property
    def neurons_kept(self) -> int:
        return int(sum(k.sum() for k in self.kept.values()))


def ffn_scores(unet, ffn_stat: dict) -> dict[str, np.ndarray]:
    import torch

    scores = {}
    for name, ff in ff_modules(unet):
        if name not in ffn_stat:
            raise FfnSelectionError(
                f"The profile has no feed-forward statistics for {name}; profile this model again "
                "(with FFN statistics on) to prune feed-forward neurons."
            )
        act = np.asarray(torch.as_tensor(ffn_stat[name]).float().cpu().numpy(), dtype=np.float64)
        w = ff.net[2].weight
        if w.device.type == "meta":
            out_norm = np.ones(act.size)
        else:
            out_norm = w.detach().float().norm(dim=0).cpu().numpy().astype(np.float64)
        if act.shape != out_norm.shape:
            raise FfnSelectionError(f"{name}: the profile has {act.size} neurons, the model {out_norm.size}.")
        scores[name] = act * out_norm
    return scores


def _kept_count(inner: int, ratio: float, multiple: int = 8) -> int:
    keep = inner * (1.0 - ratio)
    if inner >= 2 * multiple:
        k = int(round(keep / multiple)) * multiple
    else:
        k = int(round(keep))
    return int(min(inner, max(1, k)))


def select_ffn(scores: dict[str, np.ndarray], ratio: float) -> FfnSelection:
    """Removes the `ratio` lowest-scoring neurons of every FFN (0 <= ratio < 1)."""
    if not 0.0 <= ratio < 1.0:
        raise FfnSelectionError(f"The FFN pruning ratio must be in [0, 1), got {ratio}.")
    kept = {}
    for name, s in scores.items():
        k = _kept_count(s.size, ratio)
        mask = np.zeros(s.size, dtype=bool)
        mask[np.argsort(-s, kind="stable")[:k]] = True
        kept[name] = mask
    return FfnSelection(kept)
