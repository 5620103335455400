"""Which heads to keep: percentile / absolute threshold / target retention, a per-module minimum, and the
fast `estimate` the GUI slider calls on every move (vectorised numpy over precomputed per-module costs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.errors import HeadRoomError
from core.pruning.structure import UnetStructure

MODES = ("percentile", "absolute", "retention")


class SelectionError(HeadRoomError):
    pass


@dataclass(frozen=True)
class PruneConfig:
    """`percentile`: remove heads scoring below the P-th percentile of all scores (P in [0, 100]).
    `absolute`: remove heads scoring below `value`. `retention`: keep the best `value` fraction (0..1].
    Every module keeps at least `min_heads_per_module` heads, unless `allow_drop_modules` is set: then a module
    whose every head falls below the threshold is dropped as a whole, and the selection records it."""

    mode: str = "percentile"
    value: float = 30.0
    min_heads_per_module: int = 1
    allow_drop_modules: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SelectionError(f"Unknown selection mode {self.mode!r}; choose one of {', '.join(MODES)}.")
        if self.mode == "percentile" and not 0.0 <= self.value <= 100.0:
            raise SelectionError(f"A percentile must be between 0 and 100, got {self.value}.")
        if self.mode == "retention" and not 0.0 < self.value <= 1.0:
            raise SelectionError(f"A retention ratio must be in (0, 1], got {self.value}.")
        if self.min_heads_per_module < 0:
            raise SelectionError("min_heads_per_module cannot be negative.")
        if self.min_heads_per_module == 0 and not self.allow_drop_modules:
            raise SelectionError(
                "min_heads_per_module=0 would leave attentions with zero heads; keep at least 1, "
                "or set allow_drop_modules=True to drop whole attentions deliberately."
            )

    def threshold_params(self) -> dict:
        return {self.mode: self.value, "min_heads_per_module": self.min_heads_per_module,
                "allow_drop_modules": self.allow_drop_modules}


@dataclass
class HeadSelection:
    structure: UnetStructure
    kept_flat: np.ndarray  # bool, one per head in structure order
    dropped: list[str]
    config: PruneConfig
    method: str = "activation_energy_rank"
    threshold: float | None = None

    @property
    def kept(self) -> dict[str, np.ndarray]:
        o = self.structure.offsets
        return {n: self.kept_flat[o[i]:o[i + 1]] for i, n in enumerate(self.structure.names)}

    def removed_heads(self) -> dict[str, list[int]]:
        return {n: np.flatnonzero(~k).tolist() for n, k in self.kept.items() if not k.all()}

    @property
    def heads_total(self) -> int:
        return int(self.kept_flat.size)

    @property
    def heads_kept(self) -> int:
        return int(self.kept_flat.sum())

    @property
    def retention_ratio(self) -> float:
        return self.heads_kept / self.heads_total if self.heads_total else 1.0

    @classmethod
    def from_removed(cls, structure: UnetStructure, removed: dict[str, list[int]], dropped=(), method="manual",
                     config: PruneConfig | None = None) -> "HeadSelection":
        kept = np.ones(structure.total_heads, dtype=bool)
        for name, heads in removed.items():
            i = structure.index(name)
            idx = np.asarray(heads, dtype=np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= structure.heads[i]):
                raise SelectionError(f"{name} has {structure.heads[i]} heads; cannot remove head(s) {heads}.")
            kept[structure.offsets[i] + idx] = False
        dropped = list(dropped)
        for name in dropped:
            i = structure.index(name)
            kept[structure.offsets[i]:structure.offsets[i + 1]] = False
        sel = cls(structure, kept, dropped, config or PruneConfig(min_heads_per_module=1), method)
        sel.validate()
        return sel

    def validate(self) -> None:
        counts = np.add.reduceat(self.kept_flat.astype(np.int64), self.structure.offsets[:-1])
        empty = {self.structure.names[i] for i in np.flatnonzero(counts == 0)}
        undeclared = empty - set(self.dropped)
        if undeclared:
            raise SelectionError(
                f"{len(undeclared)} attention(s) would keep zero heads without being dropped deliberately "
                f"(e.g. {sorted(undeclared)[0]}); keep at least one head or list them as dropped."
            )


def select_heads(scores, config: PruneConfig, structure: UnetStructure | None = None) -> HeadSelection:
    """Applies `config` to `scores` (a `HeadScores`). Heads scoring higher are more important."""
    structure = structure or scores.structure
    s = scores.flat(structure)
    n = s.size
    m = structure.module_of_head
    if config.mode == "retention":
        k = max(1, int(round(config.value * n)))
        order = np.argsort(-s, kind="stable")
        kept = np.zeros(n, dtype=bool)
        kept[order[:k]] = True
        threshold = float(s[order[k - 1]])
    else:
        threshold = float(np.percentile(s, config.value)) if config.mode == "percentile" else float(config.value)
        kept = s >= threshold if config.mode == "absolute" else s > threshold
        if config.mode == "percentile" and config.value <= 0.0:
            kept[:] = True
    counts = np.add.reduceat(kept.astype(np.int64), structure.offsets[:-1])
    dropped_mask = (counts == 0) & config.allow_drop_modules
    min_keep = np.minimum(structure.heads, config.min_heads_per_module)
    force = np.zeros(n, dtype=bool)
    if min_keep.any():
        order = np.lexsort((-s, m))  # by module, best head first
        pos = np.arange(n) - structure.offsets[m[order]]
        force[order] = pos < min_keep[m[order]]
        force &= ~dropped_mask[m]
        kept |= force
    kept &= ~dropped_mask[m]
    if config.mode == "retention":
        # Meet the target exactly: heads kept only for the per-module minimum displace the weakest others.
        excess = int(kept.sum()) - max(k, int(force.sum()))
        if excess > 0:
            removable = np.flatnonzero(kept & ~force)
            kept[removable[np.argsort(s[removable], kind="stable")[:excess]]] = False
    dropped = [structure.names[i] for i in np.flatnonzero(dropped_mask)]
    sel = HeadSelection(structure, kept, dropped, config, getattr(scores, "method", "unknown"), threshold)
    sel.validate()
    return sel


@dataclass
class Estimate:
    heads_total: int
    heads_kept: int
    params_removed: int
    bytes_removed: int
    unet_params: int
    per_module: dict = field(default_factory=dict)  # name -> (heads_kept, heads, params_removed)

    @property
    def heads_removed(self) -> int:
        return self.heads_total - self.heads_kept

    @property
    def params_fraction_removed(self) -> float:
        return self.params_removed / self.unet_params if self.unet_params else 0.0

    def as_dict(self) -> dict:
        return dict(heads_total=self.heads_total, heads_kept=self.heads_kept, heads_removed=self.heads_removed,
                    params_removed=self.params_removed, bytes_removed=self.bytes_removed,
                    unet_params=self.unet_params, params_fraction_removed=self.params_fraction_removed)


def estimate(selection: HeadSelection, unet_structure: UnetStructure | None = None, per_module: bool = True,
             dtype_bytes: int | None = None) -> Estimate:
    """Heads kept, parameters and bytes removed per module and in total, without touching the model."""
    st = unet_structure or selection.structure
    kept_counts = np.add.reduceat(selection.kept_flat.astype(np.int64), st.offsets[:-1])
    removed_params = (st.heads - kept_counts) * st.params_per_head + (kept_counts == 0) * st.drop_extra_params
    total = int(removed_params.sum())
    per = {}
    if per_module:
        per = {n: (int(k), int(h), int(p)) for n, k, h, p in zip(st.names, kept_counts.tolist(), st.heads.tolist(),
                                                                  removed_params.tolist())}
    return Estimate(
        heads_total=int(st.total_heads), heads_kept=int(kept_counts.sum()), params_removed=total,
        bytes_removed=total * int(dtype_bytes or st.dtype_bytes), unet_params=int(st.total_params), per_module=per,
    )


def estimate_reductions(selection: HeadSelection | None, structure: UnetStructure, ffn_ratio: float = 0.0,
                        precision: str = "fp32", int8_rest_dtype: str | None = None) -> dict:
    """What each reduction would remove, in parameters and bytes, before any surgery (the sequential breakdown
    `reduce_unet` measures, for heads, FFN neurons and the precision tier; low-rank needs the singular values
    and is not estimated). Assumes one floating dtype for the whole UNet (`structure.dtype_bytes`)."""
    from core.pruning.ffn import _kept_count
    from core.pruning.structure import BYTES_PER_DTYPE

    st = structure
    base_b = int(st.dtype_bytes)
    params = int(st.total_params)
    w, b, o = st.linear_weight_params, st.linear_bias_params, st.linear_out_features
    steps = []
    # Heads: q/k/v rows (+ biases, + their int8 scales) and to_out columns; a dropped module also loses to_out.
    heads_removed = 0
    if selection is not None:
        kept = np.add.reduceat(selection.kept_flat.astype(np.int64), st.offsets[:-1])
        removed = st.heads - kept
        dropped = kept == 0
        d = np.array([i.head_dim for i in st.infos], dtype=np.int64)
        q = np.array([i.query_dim for i in st.infos], dtype=np.int64)
        kv = np.array([i.kv_in_dim for i in st.infos], dtype=np.int64)
        out = np.array([i.out_dim for i in st.infos], dtype=np.int64)
        qkv_bias = np.array([i.qkv_bias for i in st.infos], dtype=np.int64)
        out_bias = np.array([i.out_bias for i in st.infos], dtype=np.int64)
        dw = int((removed * d * (q + 2 * kv + out)).sum())
        db = int((removed * 3 * d * qkv_bias).sum() + (dropped * out * out_bias).sum())
        do = int((removed * 3 * d).sum() + (dropped * out).sum())
        w, b, o, params = w - dw, b - db, o - do, params - dw - db
        heads_removed = int(removed.sum())
        steps.append(dict(reduction="attention_heads", params_removed=dw + db, bytes_removed=(dw + db) * base_b,
                          heads_removed=heads_removed))
    else:
        steps.append(dict(reduction="attention_heads", params_removed=0, bytes_removed=0, heads_removed=0))
    # FFN neurons: the same kept count rule as `select_ffn`.
    fw = fb = fo = neurons = 0
    if ffn_ratio > 0:
        for f in st.ffns:
            r = f.inner - _kept_count(f.inner, ffn_ratio)
            g = f.rows_per_neuron
            neurons += r
            fw += r * (g * f.dim_in + f.dim_out)
            fb += r * g * (1 if f.proj_bias else 0)
            fo += r * g
    w, b, o, params = w - fw, b - fb, o - fo, params - fw - fb
    steps.append(dict(reduction="ffn_neurons", params_removed=fw + fb, bytes_removed=(fw + fb) * base_b,
                      neurons_removed=neurons))
    steps.append(dict(reduction="low_rank", params_removed=0, bytes_removed=0, layers=0, estimated=False))
    before = params * base_b
    if precision == "int8":
        rest_b = BYTES_PER_DTYPE[int8_rest_dtype] if int8_rest_dtype else base_b
        after = w * 1 + (params - w) * rest_b + o * rest_b
        steps.append(dict(reduction="precision", params_removed=-o, bytes_removed=before - after,
                          precision=precision))
    else:
        after = params * BYTES_PER_DTYPE[precision]
        steps.append(dict(reduction="precision", params_removed=0, bytes_removed=before - after,
                          precision=precision))
    base_bytes = int(st.total_params) * base_b
    return dict(base_bytes=base_bytes, fragment_bytes=after, breakdown=steps,
                bytes_fraction_removed=1 - after / base_bytes if base_bytes else 0.0)
