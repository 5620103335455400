"""`HeadProfiler`: installs statistics processors and FFN hooks on a UNet, keeps running sums, restores it.

Layout of the running sums (all float32, on the model's device, flat over heads so one step costs one add):
  energy   (seeds, buckets, 2, total_heads)   sum over items of mean_t ||head output_t||_2
  mass     (seeds, buckets, 2, cross_heads)   sum over items of attention mass on the prompt's content tokens
  entropy  (seeds, buckets, 2, cross_heads)   sum over items of mean_t entropy of the attention over tokens
  count    (seeds, buckets, 2)                items summed in each cell (kept on the host)
  per prompt: energy (prompts, 2, total_heads), token mass (prompts, 2, cross_heads, tokens), count
  ffn      (2, total_neurons)                 sum over items of mean_t |hidden activation|
Half 0 is the unconditional half of a classifier-free-guidance batch ([uncond, cond]), half 1 the conditional.
Memory is flat in the number of steps beyond `max_step_buckets`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from core.profiling.config import ProfilerConfig, step_buckets
from core.profiling.structure import ProfilingError, discover

UNCOND, COND = 0, 1


class HeadProfiler:
    """Context manager; while active every attention module of `unet` records statistics.

    The driver tells it where it is: `begin_generation(seed_index, prompt_indices, content_masks)` before a
    generation, `end_step(step)` after each denoising step. On exit the original processors are put back
    (the very same objects) and all hooks are removed.
    """

    def __init__(self, unet, *, n_seeds: int = 1, n_prompts: int = 1, steps: int = 1, cfg: bool = True,
                 n_tokens: int = 77, config: ProfilerConfig | None = None) -> None:
        self.unet = unet
        self.config = config or ProfilerConfig()
        self.modules, self.ffns = discover(unet)
        if not self.modules:
            raise ProfilingError(
                f"{type(unet).__name__} has no attention modules inside transformer blocks: nothing to profile. "
                "HeadRoom profiles diffusers UNet2DConditionModel-style UNets (SD 1.x, 2.x, XL)."
            )
        self.n_seeds, self.n_prompts, self.steps, self.cfg, self.n_tokens = n_seeds, n_prompts, steps, cfg, n_tokens
        self.bucket_of_step = step_buckets(steps, self.config.max_step_buckets)
        self.n_buckets = self.bucket_of_step[-1] + 1
        self.total_heads = sum(m.heads for m in self.modules)
        self.cross = [m for m in self.modules if m.kind == "cross"]
        self.cross_heads = sum(m.heads for m in self.cross)
        self.total_neurons = sum(f.inner for f in self.ffns)
        self.map_modules = list(self.config.spatial_map_modules or [])
        names = {m.name for m in self.cross}
        for name in self.map_modules:
            if name not in names:
                raise ProfilingError(f"Spatial maps were asked for {name!r}, which is not a cross-attention module "
                                     f"of this UNet. Cross-attention modules: {sorted(names)[:4]} ...")
        self._cross_slot = {i: k for k, i in enumerate(i for i, m in enumerate(self.modules) if m.kind == "cross")}
        self._step_buffers: StepBuffers | None = None
        self.sums: dict = {}
        self.count = [[[0.0, 0.0] for _ in range(self.n_buckets)] for _ in range(n_seeds)]
        self.prompt_count = [[0.0, 0.0] for _ in range(n_prompts)]
        self.ffn_count = [0.0, 0.0]
        self.maps: dict = {}
        self.latent_hw: tuple[int, int] | None = None
        self._saved: dict = {}
        self._hooks: list = []
        self._active = False
        self.begin_generation(0, [0])
        self._reset_step()

    # -- installing and restoring -------------------------------------------------------------------------
    def __enter__(self) -> HeadProfiler:
        from core.profiling.processor import SUPPORTED_PROCESSORS, ProfilingAttnProcessor

        try:
            for index, record in enumerate(self.modules):
                attn = self.unet.get_submodule(record.name)
                name = type(attn.processor).__name__
                if name not in SUPPORTED_PROCESSORS:
                    raise ProfilingError(
                        f"{record.name} uses the attention processor {name}; the profiler reproduces only "
                        f"diffusers' default attention ({', '.join(SUPPORTED_PROCESSORS)}). Disable xFormers / "
                        "custom attention (e.g. unet.set_default_attn_processor()) and profile again."
                    )
                explicit = record.kind == "cross" and self.config.cross_stats
                proc = ProfilingAttnProcessor(self, index, explicit, record.name in self.map_modules)
                self._saved[record.name] = attn.processor
                attn.set_processor(proc)
            if self.config.ffn_stats:
                for index, ffn in enumerate(self.ffns):
                    out_proj = self.unet.get_submodule(ffn.name).net[2]
                    self._hooks.append(out_proj.register_forward_pre_hook(self._ffn_hook(index)))
        except BaseException:
            self._restore()
            raise
        self._active = True
        return self

    def __exit__(self, *exc) -> None:
        self._restore()
        self._active = False

    def _restore(self) -> None:
        for name, processor in self._saved.items():
            self.unet.get_submodule(name).set_processor(processor)
        self._saved.clear()
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()

    # -- driver interface ---------------------------------------------------------------------------------
    def begin_generation(self, seed_index: int, prompt_indices: Sequence[int], content_masks=None,
                         latent_hw: tuple[int, int] | None = None) -> None:
        """`content_masks`: (2, items, tokens) 0/1, which key positions count as the prompt's content tokens
        for the scalar token-mass statistic (half 0 = negative prompt). None: every token but the first."""
        if not 0 <= seed_index < self.n_seeds:
            raise ProfilingError(f"seed index {seed_index} outside 0..{self.n_seeds - 1}")
        if any(not 0 <= p < self.n_prompts for p in prompt_indices):
            raise ProfilingError(f"prompt indices {list(prompt_indices)} outside 0..{self.n_prompts - 1}")
        self.seed_index = seed_index
        self.prompt_indices = list(prompt_indices)
        self.content_masks = content_masks
        if latent_hw is not None:
            self.latent_hw = tuple(latent_hw)
        self._prompt_index_tensor = None
        self._content_mask_tensor = None

    def end_step(self, step: int) -> None:
        """Folds what the UNet call(s) of this step recorded into the running sums of its bucket."""
        if not 0 <= step < self.steps:
            raise ProfilingError(f"step {step} outside 0..{self.steps - 1}")
        if self._calls == 0:
            self._reset_step()
            return
        self._check_complete()
        bucket = self.bucket_of_step[step]
        items = len(self.prompt_indices)
        calls = self._calls
        step_sums = self._step_buffers
        scales = step_sums.scales()  # sums over queries / tokens -> means
        energy = self._halves(step_sums.norms.sum(-1).mul_(scales.energy), items)  # (2, items, NH)
        self._add("energy", (self.n_seeds, self.n_buckets, 2, self.total_heads), _over_items(energy),
                  (self.seed_index, bucket))
        self._add_prompts("energy_prompt", (self.n_prompts, 2, self.total_heads), energy)
        if self.cross and self.config.cross_stats:
            mass_tokens = self._halves(step_sums.mass * scales.mass, items)  # (2, items, NC, T)
            entropy = self._halves(step_sums.entropy * scales.entropy, items)
            content = (mass_tokens @ self._content_mask(mass_tokens).unsqueeze(-1)).squeeze(-1)
            self._add("mass", (self.n_seeds, self.n_buckets, 2, self.cross_heads), _over_items(content),
                      (self.seed_index, bucket))
            self._add("entropy", (self.n_seeds, self.n_buckets, 2, self.cross_heads), _over_items(entropy),
                      (self.seed_index, bucket))
            self._add_prompts("token_mass_prompt", (self.n_prompts, 2, self.cross_heads, self.n_tokens),
                              mass_tokens)
        if self._ffn_recorded:
            ffn = self._halves(step_sums.ffn * scales.ffn, items)
            self._add("ffn", (2, self.total_neurons), _over_items(ffn), ())
        for name, parts in self._maps.items():
            self._fold_map(name, parts)
        halves = (UNCOND, COND) if self.cfg else (COND,)
        for half in halves:
            self.count[self.seed_index][bucket][half] += items * calls
            for p in self.prompt_indices:
                self.prompt_count[p][half] += calls
            if self._ffn_recorded:
                self.ffn_count[half] += items * calls
        self._reset_step()

    # -- called from processors and hooks (device tensors only, no host sync) ------------------------------
    # On a small UNet the number of tensor ops per module, not their size, is the cost: each statistic is one
    # op written straight into the module's slice of a per-step buffer (out=); the sums over queries of the
    # energy and the sums -> means happen once per step for all modules together.
    def record(self, index: int, head_out, probs=None, log_probs=None, spatial_map: bool = False) -> None:
        """head_out: (batch, heads, queries, head_dim), the attention output before `to_out`.
        probs / log_probs (cross-attention with statistics): (batch, heads, queries, keys) in float32."""
        import torch

        first = self._call_counts[index] == 0
        self._call_counts[index] += 1
        step_sums = self._buffers(head_out)
        norms = step_sums.norms_of(index, head_out.shape[2])  # (batch, heads, queries) slice of the step buffer
        _reduce_into(norms, first, torch.linalg.vector_norm, _detached(head_out), dim=-1, dtype=torch.float32)
        if probs is not None:
            self._record_cross(index, first, step_sums, _detached(probs), _detached(log_probs), spatial_map)

    def _record_cross(self, index: int, first: bool, step_sums, probs, log_probs, spatial_map: bool) -> None:
        if probs.shape[-1] != self.n_tokens:
            raise ProfilingError(
                f"Cross-attention saw {probs.shape[-1]} text tokens, the profile was set up for {self.n_tokens}. "
                "Long-prompt (chunked) embeddings are not supported while profiling; shorten the prompt."
            )
        import torch

        slot = self._cross_slot[index]
        _reduce_into(step_sums.mass_cols[slot], first, torch.sum, probs, 2)
        # sum over queries and keys of p*log(p) in one reduction (the scale -1/queries comes at end_step)
        _reduce_into(step_sums.entropy_cols[slot], first, torch.linalg.vecdot, probs.flatten(2), log_probs.flatten(2))
        if spatial_map:
            self._record_map(self.modules[index].name, probs)

    def _ffn_hook(self, index: int):
        import torch

        def hook(module, args):
            first = self._ffn_call_counts[index] == 0
            self._ffn_call_counts[index] += 1
            x = _detached(args[0])  # (batch, tokens, inner)
            step_sums = self._buffers(x)
            step_sums.tokens[index] = x.shape[1]
            # abs() then sum is ~7x faster than vector_norm(ord=1) over a middle dim on CPU
            _reduce_into(step_sums.ffn_cols[index], first, torch.sum, x.abs(), 1, dtype=torch.float32)

        return hook

    # -- internals ----------------------------------------------------------------------------------------
    def _reset_step(self) -> None:
        self._maps: dict = {}
        self._call_counts = [0] * len(self.modules)
        self._ffn_call_counts = [0] * len(self.ffns)

    @property
    def _calls(self) -> int:
        return max(self._call_counts) if self._call_counts else 0

    @property
    def _ffn_recorded(self) -> bool:
        return self.config.ffn_stats and any(self._ffn_call_counts)

    def _check_complete(self) -> None:
        counts = self._call_counts + (self._ffn_call_counts if self._ffn_recorded else [])
        if min(counts) == max(counts):
            return
        names = [m.name for m in self.modules] + [f.name for f in self.ffns]
        missing = [n for n, c in zip(names, counts) if c == 0]
        if missing:
            raise ProfilingError(f"{len(missing)} modules did not run in this step (e.g. {missing[0]}); the UNet "
                                 "skipped blocks the profiler expected. Profile the model without step caching.")
        raise ProfilingError("Attention modules ran a different number of times in one step; "
                             "turn off token merging / block caching while profiling.")

    def _buffers(self, like) -> StepBuffers:
        """The step buffers for this batch size and device, allocated once and reused every step."""
        buffers = self._step_buffers
        if buffers is None or buffers.batch != like.shape[0] or buffers.device != like.device:
            buffers = self._step_buffers = StepBuffers(self, like.shape[0], like.device)
        return buffers

    def _halves(self, flat, items: int):
        """(batch, ...) -> (2, items, ...); without CFG the unconditional half is zeros."""
        import torch

        batch = flat.shape[0]
        if self.cfg:
            if batch != 2 * items:
                raise ProfilingError(f"Expected a guidance batch of 2 x {items} items, the UNet saw {batch}.")
            return flat.view(2, items, *flat.shape[1:])
        if batch != items:
            raise ProfilingError(f"Expected a batch of {items} items without guidance, the UNet saw {batch}.")
        return torch.stack([torch.zeros_like(flat), flat])

    def _add(self, key: str, shape: tuple, value, index: tuple) -> None:
        import torch

        if key not in self.sums:
            self.sums[key] = torch.zeros(shape, dtype=torch.float32, device=value.device)
        target = self.sums[key][index] if index else self.sums[key]
        target += value

    def _add_prompts(self, key: str, shape: tuple, value) -> None:
        """value: (2, items, ...) -> sums[key][prompt, half] += value[half, item]."""
        import torch

        if key not in self.sums:
            self.sums[key] = torch.zeros(shape, dtype=torch.float32, device=value.device)
        for item, prompt in enumerate(self.prompt_indices):  # one item in practice: cheaper than index_add_
            self.sums[key][prompt] += value[:, item]

    def _prompt_index(self, device):
        import torch

        if self._prompt_index_tensor is None or self._prompt_index_tensor.device != device:
            self._prompt_index_tensor = torch.tensor(self.prompt_indices, dtype=torch.long, device=device)
        return self._prompt_index_tensor

    def _content_mask(self, mass_tokens):
        """(2, items, tokens) float32 on the device; built once per generation."""
        import torch

        mask = self._content_mask_tensor
        if mask is None or mask.device != mass_tokens.device:
            if self.content_masks is not None:
                mask = self.content_masks.to(device=mass_tokens.device, dtype=torch.float32)
            else:
                mask = torch.ones(mass_tokens.shape[:2] + mass_tokens.shape[-1:], device=mass_tokens.device)
                mask[..., 0] = 0.0
            self._content_mask_tensor = mask
        return mask

    def _fold_map(self, name: str, parts: list) -> None:
        import torch

        stacked = torch.stack(parts).sum(0)  # (items, heads, tokens, m, m), cond half
        key = "map." + name
        if key not in self.maps:
            self.maps[key] = torch.zeros((self.n_prompts,) + tuple(stacked.shape[1:]), dtype=torch.float32,
                                         device=stacked.device)
        self.maps[key].index_add_(0, self._prompt_index(stacked.device), stacked)

    def _record_map(self, name: str, probs) -> None:
        import torch.nn.functional as F

        items = len(self.prompt_indices)
        cond = probs[items:] if self.cfg else probs  # (items, heads, queries, tokens)
        h, w = self._query_grid(cond.shape[2])
        grid = cond.permute(0, 1, 3, 2).reshape(items, cond.shape[1] * cond.shape[3], h, w)
        size = (min(h, self.config.map_size), min(w, self.config.map_size))
        pooled = F.adaptive_avg_pool2d(grid, size).reshape(items, cond.shape[1], cond.shape[3], *size)
        self._maps.setdefault(name, []).append(pooled)

    def _query_grid(self, queries: int) -> tuple[int, int]:
        if self.latent_hw is None:
            side = math.isqrt(queries)
            if side * side != queries:
                raise ProfilingError("Spatial maps need the latent size for non-square inputs.")
            return side, side
        h, w = self.latent_hw
        while h * w > queries:
            h, w = (h + 1) // 2, (w + 1) // 2
        if h * w != queries:
            raise ProfilingError(f"Cannot place {queries} queries on a grid derived from latents {self.latent_hw}.")
        return h, w

    def counts_tensors(self):
        import torch

        return (torch.tensor(self.count, dtype=torch.float32), torch.tensor(self.prompt_count, dtype=torch.float32),
                torch.tensor(self.ffn_count, dtype=torch.float32))


class StepBuffers:
    """What one step's UNet call(s) record, as sums over queries (tokens for the FFN), flat over heads:
    per-query head-output norms (batch, NH, max queries; a module with fewer queries leaves its tail at zero),
    token mass (batch, NC, tokens), sum of p*log(p) (batch, NC), FFN (batch, neurons); plus a ready-made view
    of each module's slice and the query / token count each module saw."""

    def __init__(self, profiler: HeadProfiler, batch: int, device) -> None:
        import torch

        self.profiler, self.batch, self.device = profiler, batch, device

        def zeros(*shape):
            return torch.zeros(shape, dtype=torch.float32, device=device)

        self.zeros = zeros
        self.norms = zeros(batch, profiler.total_heads, 0)
        self.mass = zeros(batch, profiler.cross_heads, profiler.n_tokens)
        self.entropy = zeros(batch, profiler.cross_heads)
        self.ffn = zeros(batch, profiler.total_neurons)
        self.norm_cols: list = [None] * len(profiler.modules)
        self.mass_cols = [self.mass[:, m.cross_offset:m.cross_offset + m.heads] for m in profiler.cross]
        self.entropy_cols = [self.entropy[:, m.cross_offset:m.cross_offset + m.heads] for m in profiler.cross]
        self.ffn_cols = [self.ffn[:, f.offset:f.offset + f.inner] for f in profiler.ffns]
        self.queries = [1] * len(profiler.modules)
        self.tokens = [1] * len(profiler.ffns)
        self._scales_key = None

    def norms_of(self, index: int, queries: int):
        view = self.norm_cols[index]
        if view is None or view.shape[-1] != queries:
            view = self._place_norms(index, queries)
        return view

    def _place_norms(self, index: int, queries: int):
        """First call of a module (or a new latent size): widen the buffer if needed, clear the module's rows."""
        if queries > self.norms.shape[-1]:
            wider = self.zeros(self.batch, self.profiler.total_heads, queries)
            wider[..., :self.norms.shape[-1]] = self.norms
            self.norms = wider
            self.norm_cols = [None if v is None else self._norm_view(i, v.shape[-1])
                              for i, v in enumerate(self.norm_cols)]
        record = self.profiler.modules[index]
        self.norms[:, record.offset:record.offset + record.heads].zero_()
        self.norm_cols[index] = self._norm_view(index, queries)
        self.queries[index] = queries
        return self.norm_cols[index]

    def _norm_view(self, index: int, queries: int):
        record = self.profiler.modules[index]
        return self.norms[:, record.offset:record.offset + record.heads, :queries]

    def scales(self) -> MeanScales:
        """Per-column factors that turn the sums into means (entropy: -1/queries); rebuilt when sizes change."""
        key = (tuple(self.queries), tuple(self.tokens))
        if key != self._scales_key:
            self._scales = MeanScales(self.profiler, self.queries, self.tokens, self.device)
            self._scales_key = key
        return self._scales


class MeanScales:
    def __init__(self, profiler: HeadProfiler, queries: list, tokens: list, device) -> None:
        import torch

        def per_column(counts, records, width):
            return torch.tensor([1.0 / n for n, r in zip(counts, records) for _ in range(width(r))],
                                dtype=torch.float32, device=device)

        self.energy = per_column(queries, profiler.modules, lambda m: m.heads)
        cross_queries = [queries[i] for i in profiler._cross_slot]
        self.mass = per_column(cross_queries, profiler.cross, lambda m: m.heads).unsqueeze(-1)
        self.entropy = -self.mass.squeeze(-1)
        self.ffn = per_column(tokens, profiler.ffns, lambda f: f.inner)


def _reduce_into(target, first: bool, reduction, *args, **kwargs) -> None:
    """target = reduction(*args) on a module's first call in a step, target += it on later calls
    (second-order schedulers call the UNet more than once per step)."""
    if first:
        reduction(*args, out=target, **kwargs)
    else:
        target.add_(reduction(*args, **kwargs))


def _detached(tensor):
    """`out=` refuses tensors that require grad; detach only then (an op per call otherwise)."""
    return tensor.detach() if tensor.requires_grad else tensor


def _over_items(halves):
    """(2, items, ...) -> (2, ...) summed over the items; a view when there is one item (the drivers' case)."""
    return halves[:, 0] if halves.shape[1] == 1 else halves.sum(1)
