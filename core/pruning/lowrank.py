"""Low-rank (SVD) factorisation of linear layers, with a per-layer rank chosen by retained energy.

W (out x in) ~= U_r S_r V_r^T, stored as `down` (r x in, = S_r^(1/2) V_r^T) and `up` (out x r, = U_r S_r^(1/2)).
A layer is factorised only where it saves parameters: r < m*n/(m+n). Energy = sum of the kept squared singular
values over the total (the fraction of the Frobenius norm squared that is kept).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass

from core.progress import as_sink
from core.pruning.structure import replace_submodule


@dataclass
class LowRankRecord:
    layer: str
    rank: int
    orig_rank: int
    energy_retained: float
    params_before: int
    params_after: int

    def as_dict(self) -> dict:
        return asdict(self)


@functools.cache
def low_rank_linear_class():
    from torch import nn

    class LowRankLinear(nn.Module):
        def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True, device=None,
                     dtype=None):
            super().__init__()
            self.in_features, self.out_features, self.rank = int(in_features), int(out_features), int(rank)
            self.down = nn.Linear(in_features, rank, bias=False, device=device, dtype=dtype)
            self.up = nn.Linear(rank, out_features, bias=bias, device=device, dtype=dtype)

        def forward(self, x):
            return self.up(self.down(x))

        def extra_repr(self) -> str:
            return f"in={self.in_features}, out={self.out_features}, rank={self.rank}"

    return LowRankLinear



def saves_params(rank: int, m: int, n: int) -> bool:
    return rank * (m + n) < m * n


def rank_for_energy(singular_values, energy: float, multiple: int = 8) -> tuple[int, float]:
    import torch

    s2 = singular_values.double() ** 2
    cum = torch.cumsum(s2, 0) / s2.sum().clamp_min(1e-30)
    r = int(torch.searchsorted(cum, torch.tensor(energy, dtype=cum.dtype)).item()) + 1
    r = min(r, s2.numel())
    if multiple > 1 and r % multiple:
        r = min(s2.numel(), (r // multiple + 1) * multiple)
    return r, float(cum[r - 1])


@contextlib.contextmanager
def _few_threads(w):
    """Small CPU matrices: one thread. On a shared CPU, thread start-up and spinning dominate small LAPACK and
    elementwise calls (measured: SVD of 1536x192 took 6.7 s with 2 threads on a busy 2-core box, 0.03 s with 1)."""
    import torch

    if w.device.type != "cpu" or min(w.shape) >= 512:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _eigh(gram):
    import torch

    return torch.linalg.eigh(gram)


def _truncated_svd(w, energy: float):
    """Singular values of W plus factories for the balanced rank-r factors (up = U_r S_r^1/2, down = S_r^1/2 V_r^T).

    Through the eigen-decomposition of the smaller Gram matrix in float64: LAPACK's SVD is orders of magnitude
    slower on a busy multi-threaded CPU, and only the large singular values (the ones kept) matter here."""

    w64 = w.double()
    m, n = w64.shape
    gram = w64.T @ w64 if m >= n else w64 @ w64.T
    evals, vecs = _eigh(gram)
    evals, vecs = evals.flip(0).clamp_min(0.0), vecs.flip(1)
    s = evals.sqrt()

    def factors(r):
        root = s[:r].clamp_min(1e-30).sqrt()
        basis = vecs[:, :r]
        if m >= n:  # basis = V_r; W V_r = U_r S_r
            return (w64 @ basis) / root[None, :], root[:, None] * basis.T
        return basis * root[None, :], (basis.T @ w64) / root[:, None]  # basis = U_r; U_r^T W = S_r V_r^T

    return s.float(), factors


def default_filter(name: str, lin) -> bool:
    """Linear layers of the transformer blocks and projections (not the tiny time-embedding heads)."""
    return ".transformer_blocks." in name or name.endswith(("proj_in", "proj_out"))




def apply_low_rank(unet, energy: float, filter: Callable | None = None, min_features: int = 32,
                   progress=None, token=None) -> list[LowRankRecord]:
    """Factorises every eligible nn.Linear whose energy-rank saves parameters. Returns one record per layer
    actually factorised (in place)."""
    from torch import nn

    if not 0.0 < energy < 1.0:
        raise ValueError(f"retained energy must be in (0, 1), got {energy}")
    sink = as_sink(progress, token)
    filter = filter or default_filter
    LowRank = low_rank_linear_class()
    targets = [(n, m) for n, m in unet.named_modules()
               if type(m) is nn.Linear and filter(n, m) and min(m.in_features, m.out_features) >= min_features]
    records = []
    for i, (name, lin) in enumerate(targets):
        sink.report(i, len(targets), f"low-rank {name}")
        w = lin.weight.detach()
        m, n = w.shape
        with _few_threads(w):
            s, factors = _truncated_svd(w, energy)
            r, kept = rank_for_energy(s, energy)
            if not saves_params(r, m, n):
                continue
            up, down = factors(r)
        new = LowRank(n, m, r, bias=lin.bias is not None, device=w.device, dtype=w.dtype)
        new.down.weight = nn.Parameter(down.to(w.dtype).contiguous(), requires_grad=False)
        new.up.weight = nn.Parameter(up.to(w.dtype).contiguous(), requires_grad=False)
        if lin.bias is not None:
            new.up.bias = nn.Parameter(lin.bias.detach().clone(), requires_grad=False)
        replace_submodule(unet, name, new)
        records.append(LowRankRecord(name, r, min(m, n), kept, m * n + (m if lin.bias is not None else 0),
                                     r * (m + n) + (m if lin.bias is not None else 0)))
    sink.report(len(targets), len(targets), "low-rank done")
    return records


def restructure_low_rank(unet, layers: list[dict], from_weights: bool = False) -> None:
    """Replaces the recorded layers by LowRankLinear modules of the recorded rank: empty ones (to load weights
    into), or, with `from_weights`, factorised from the layer's current weights at exactly that rank."""
    from torch import nn

    LowRank = low_rank_linear_class()
    for rec in layers:
        lin = unet.get_submodule(rec["layer"])
        r = int(rec["rank"])
        w = lin.weight
        new = LowRank(lin.in_features, lin.out_features, r, bias=lin.bias is not None, device=w.device,
                      dtype=w.dtype)
        if from_weights:
            with _few_threads(w):
                _, factors = _truncated_svd(w.detach(), 1.0)
                up, down = factors(r)
            new.down.weight = nn.Parameter(down.to(w.dtype).contiguous(), requires_grad=False)
            new.up.weight = nn.Parameter(up.to(w.dtype).contiguous(), requires_grad=False)
            if lin.bias is not None:
                new.up.bias = nn.Parameter(lin.bias.detach().clone(), requires_grad=False)
        replace_submodule(unet, rec["layer"], new)
