"""Profile -> scores -> selection -> reduced UNet -> saved fragment, with progress and cancel at every step."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import HeadRoomError
from core.progress import as_sink
from core.pruning.extract import ExtractConfig
from core.pruning.heal import HealConfig
from core.pruning.selection import PruneConfig


@dataclass(frozen=True)
class FragmentRequest:
    prune: PruneConfig = field(default_factory=lambda: PruneConfig("percentile", 30.0))
    score: str = "activation_energy_rank"
    normalize: str = "global"
    reduce: ExtractConfig = field(default_factory=ExtractConfig)
    heal: HealConfig = field(default_factory=HealConfig)  # steps=0: no healing


def prompt_embedding_hash(pipe, prompts: list[str]) -> str | None:
    """sha256 of the prompts' text-encoder outputs (fp16 bytes, every encoder), or None without an encoder."""
    import torch

    pairs = [(getattr(pipe, "tokenizer", None), getattr(pipe, "text_encoder", None)),
             (getattr(pipe, "tokenizer_2", None), getattr(pipe, "text_encoder_2", None))]
    pairs = [(t, e) for t, e in pairs if t is not None and e is not None]
    if not pairs or not prompts:
        return None
    digest = hashlib.sha256()
    with torch.no_grad():
        for tokenizer, encoder in pairs:
            ids = tokenizer(list(prompts), padding="max_length", max_length=tokenizer.model_max_length,
                            truncation=True, return_tensors="pt").input_ids.to(encoder.device)
            hidden = encoder(ids, output_hidden_states=False)[0]
            digest.update(hidden.detach().to(torch.float16).cpu().numpy().tobytes())
    return digest.hexdigest()


def _text_encoder_version(pipe) -> str | None:
    names = []
    for attr in ("text_encoder", "text_encoder_2"):
        enc = getattr(pipe, attr, None)
        if enc is not None:
            cfg = enc.config
            names.append(f"{type(enc).__name__}(hidden={cfg.hidden_size}, layers={cfg.num_hidden_layers})")
    return " + ".join(names) or None


def _timestamp(meta: dict) -> int | None:
    from datetime import datetime

    if isinstance(meta.get("timestamp"), (int, float)):
        return int(meta["timestamp"])
    started = (meta.get("timings") or {}).get("started_at")
    if isinstance(started, str):
        try:
            return int(datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp())
        except ValueError:
            return None
    return None


def extract_fragment(loaded, profile, out_dir, request: FragmentRequest = FragmentRequest(), progress=None,
                     token=None):
    """Builds and saves a fragment of `loaded` (a LoadedModel) from `profile`. Returns the saved manifest."""
    import torch

    from core.fragments.manifest import (
        BaseModelInfo,
        Compression,
        FfnPruning,
        FragmentManifest,
        GenerationContext,
        Healing,
        LowRankLayer,
        Performance,
        ProfilingInfo,
        Pruning,
        Quantization,
        ReductionStep,
        SizeReport,
    )
    from core.fragments.store import save_fragment
    from core.pruning.extract import reduce_unet
    from core.pruning.ffn import ffn_scores, select_ffn
    from core.pruning.precision import dtype_name
    from core.pruning.scores import compute_head_scores
    from core.pruning.selection import select_heads
    from core.pruning.structure import UnetStructure

    sink = as_sink(progress, token)
    start = time.perf_counter()
    if hasattr(profile, "check_model"):
        profile.check_model(loaded)
    unet = loaded.unet
    sink.report(0, 5, "scoring heads")
    scores = compute_head_scores(profile, request.score, request.normalize, pipe=loaded.pipe, token=token)
    structure = UnetStructure.from_unet(unet)
    selection = select_heads(scores, request.prune, structure)
    ffn_sel = None
    if request.reduce.ffn_ratio > 0:
        if not hasattr(profile, "ffn_stat"):
            raise HeadRoomError("This profile has no feed-forward statistics; FFN pruning needs them.")
        try:
            ffn_stat = profile.ffn_stat()
        except ValueError as exc:
            raise HeadRoomError(f"{exc} FFN pruning needs them: profile again with FFN statistics, "
                                "or extract without --ffn.") from exc
        ffn_sel = select_ffn(ffn_scores(unet, ffn_stat), request.reduce.ffn_ratio)
    meta = dict(getattr(profile, "meta", {}) or {})
    prompts = [str(p) for p in meta.get("prompts", [])]
    healed = {}

    def heal(work):
        from core.pruning.heal import heal_unet

        with torch.enable_grad():
            healed.update(heal_unet(work, loaded.pipe, prompts, request.heal, progress=sink))

    sink.report(1, 5, "reducing the UNet")
    with torch.no_grad():
        result = reduce_unet(unet, selection, ffn_sel, request.reduce, copy=True, token=token,
                             before_precision=heal if request.heal.steps else None)
    sink.report(2, 5, "hashing the prompt embeddings")
    steps = meta.get("steps")
    plan = result.plan
    manifest = FragmentManifest(
        base_model=BaseModelInfo(name=loaded.name, hash=loaded.model_hash, fp_dtype=dtype_name(unet.dtype),
                                 family=loaded.family),
        generation_context=GenerationContext(
            prompt_embedding_hash=prompt_embedding_hash(loaded.pipe, prompts),
            text_encoder_version=_text_encoder_version(loaded.pipe),
            profiling=ProfilingInfo(
                seeds=[int(s) for s in meta.get("seeds", [])],
                steps_profiled=int(steps) if isinstance(steps, (int, float)) else None,
                total_steps_full=int(meta["total_steps"]) if "total_steps" in meta else
                (int(steps) if isinstance(steps, (int, float)) else None),
                timestamp=_timestamp(meta),
                prompts=prompts,
                scheduler=str(meta["scheduler"]) if meta.get("scheduler") else None,
                guidance=float(meta["guidance"]) if isinstance(meta.get("guidance"), (int, float)) else None,
                profile_seconds=(meta.get("timings") or {}).get("total_s"),
            ),
        ),
        pruning=Pruning(
            attention_heads_removed=plan["attention_heads_removed"],
            attentions_dropped=plan["attentions_dropped"],
            head_retention_ratio=selection.retention_ratio,
            heads_total=selection.heads_total,
            heads_kept=selection.heads_kept,
            method=scores.method,
            normalize=scores.normalize,
            threshold_params=dict(request.prune.threshold_params(), threshold_value=selection.threshold),
            ffn=None if ffn_sel is None else FfnPruning(
                ratio=request.reduce.ffn_ratio, neurons_total=ffn_sel.neurons_total,
                neurons_kept=ffn_sel.neurons_kept, neurons_removed=plan["ffn_neurons_removed"]),
        ),
        compression=Compression(
            low_rank_energy=request.reduce.low_rank_energy,
            low_rank_layers=[LowRankLayer(**r) for r in plan["low_rank_layers"]],
            quantization=Quantization(**plan["quantization"]),
        ),
        size=SizeReport(
            base_params=result.base["params"], base_bytes=result.base["bytes"],
            fragment_params=result.final["params"], fragment_bytes=result.final["bytes"],
            breakdown=[ReductionStep(reduction=s["reduction"], params_removed=s["params_removed"],
                                     bytes_removed=s["bytes_removed"],
                                     details={k: v for k, v in s.items()
                                              if k not in ("reduction", "params_removed", "bytes_removed")})
                       for s in result.breakdown],
        ),
        performance=Performance(device=str(unet.device)),
        healing=Healing(**healed) if healed else None,
    )
    sink.report(3, 5, "saving")
    manifest.performance.extraction_seconds = round(time.perf_counter() - start, 3)
    saved = save_fragment(Path(out_dir), result.unet, manifest)
    sink.report(5, 5, "saved")
    return saved
