"""The app's jobs: plain functions taking (progress, token) that chain core calls. They run in a CoreWorker;
nothing here does tensor maths, and torch/diffusers are imported only inside these functions."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from core.progress import as_sink


@dataclass
class ModelSession:
    """A loaded model and what the app needs to know about it."""

    loaded: Any  # core.loading.LoadedModel
    structure: Any  # core.pruning.UnetStructure
    summary: dict
    clip: Any = None  # (ClipScorer | None, Availability): text-image agreement for previews and reports


def leave_a_core_for_the_window() -> None:
    """torch's CPU threads take every core by default; on a 2-4 core machine that starves the GUI thread
    and the window stutters. One core fewer costs little and keeps the event loop answering."""
    import os

    import torch

    cores = os.cpu_count() or 2
    torch.set_num_threads(max(1, min(torch.get_num_threads(), cores - 1)))


def resolve_device(choice: str) -> str:
    import torch

    from core.errors import HeadRoomError

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise HeadRoomError(f"Device {choice!r} was chosen, but this installation of PyTorch sees no CUDA GPU. "
                            "Choose 'auto' or 'cpu', or install a CUDA build of PyTorch and a driver.")
    return choice


WARM_MODULES = ("core.profiling.run", "core.profiling.recorder", "core.pruning.scores", "core.pruning.selection",
                "core.pruning.masks", "core.generation", "core.quality.evaluate", "core.quality.images",
                "core.pruning.extract", "core.pruning.surgery", "core.fragments.extract", "core.fragments.store",
                "core.report.run", "core.report.fragment_source", "open_clip")


def prepare_libraries(sink) -> None:
    """Imports the libraries and the modules later jobs need, then moves those objects out of the cyclic
    collector's reach (gc.freeze).

    - Importing compiled extensions holds the GIL, so doing it in the middle of a later job would stall
      the window.
    - A full collection over the half million objects that torch, diffusers and transformers create holds
      the GIL for about 0.5 s, in whichever thread triggers it.
    - Modules live as long as the app. The model is loaded after the freeze, so an old model stays
      collectable once it is replaced."""
    import gc
    import importlib

    import torch  # noqa: F401

    from core.offline import import_diffusers, import_transformers

    import_diffusers()
    import_transformers()
    for name in WARM_MODULES:
        sink.check()
        try:
            importlib.import_module(name)
        except ImportError:  # a part not in this build: the job that needs it reports that
            pass
    gc.freeze()


def load_job(spec: str, device: str = "auto", dtype: str = "fp32", allow_pickle: bool = False, progress=None,
             token=None) -> ModelSession:
    from core.loading import load_model
    from core.pruning.structure import UnetStructure

    sink = as_sink(progress, token)
    sink.report(0, 2, f"loading {spec}")
    leave_a_core_for_the_window()
    prepare_libraries(sink)
    loaded = load_model(spec, device=resolve_device(device), dtype=dtype, allow_pickle=allow_pickle, progress=sink)
    sink.report(1, 2, "reading the UNet structure")
    structure = UnetStructure.from_unet(loaded.unet)
    summary = {"spec": spec, "name": loaded.name, "family": loaded.family, "source": loaded.source,
               "device": str(loaded.device), "dtype": str(loaded.dtype).replace("torch.", ""),
               "parameters": structure.total_params, "attention_modules": len(structure.names),
               "heads": structure.total_heads, "model_hash": loaded.model_hash}
    if loaded.details.get("trained") is False:
        summary["note"] = "untrained stand-in weights: images are noise until the trained model ships"
    from core.generation import default_size
    from core.loading.model_defaults import guidance_for
    from core.quality.metrics import clip_scorer_for

    summary["native_size"] = default_size(loaded.pipe)[0]
    summary["recommended_guidance"] = guidance_for(loaded, None)
    summary["guidance_from_model"] = "recommended_guidance" in loaded.details
    clip = clip_scorer_for(loaded, device=str(loaded.device))
    summary["clip"] = clip[1].reason
    sink.report(2, 2, "loaded")
    return ModelSession(loaded, structure, summary, clip)


@dataclass
class ProfileResult:
    profile: Any  # core.profiling.Profile
    images: dict  # prompt index -> the image generated for it at the first seed (for head-map overlays)


MAX_MAP_HEADS = 200  # spatial maps for every cross-attention head when the model is this small (built-in)


def profile_job(session: ModelSession, prompts, seeds, steps: int, guidance: float, size: int, sampler=None,
                progress=None, token=None) -> ProfileResult:
    """Makes one image per prompt (first seed) to show while profiling and to draw head maps over, then
    profiles the heads. Progress counts denoising steps of both parts, so the ETA covers the whole job."""
    from core.profiling import ProfilerConfig, profile_model

    sink = as_sink(progress, token)
    prompts, seeds = list(prompts), list(seeds)
    image_steps = len(prompts) * steps
    total = image_steps + len(prompts) * len(seeds) * steps
    images = {}
    for index, prompt in enumerate(prompts):
        def relay(event, _before=index * steps, _index=index):
            sink.report(_before + event.done, total, f"image for prompt {_index + 1}: {event.message}")

        image, _, _ = _generate_one(session.loaded.pipe, prompt, seeds[0], steps, guidance, size,
                                    as_sink(relay, sink.token), "")
        images[index] = image
        sink.report((index + 1) * steps, total, f"image for prompt {index + 1} ready",
                    {"image": image, "prompt_index": index})
    cross = [n for n in session.structure.names if n.endswith("attn2")]
    maps = cross if session.structure.total_heads <= MAX_MAP_HEADS else None

    def relay_profile(event):
        payload = dict(event.payload or {})
        if "prompt_index" in payload:
            payload["image"] = images.get(payload["prompt_index"])  # the prompt being profiled now
        sink.report(image_steps + event.done, total, event.message, payload)

    profile = profile_model(session.loaded, prompts, seeds, steps, guidance=guidance, size=(size, size),
                            config=ProfilerConfig(spatial_map_modules=maps), progress=relay_profile,
                            token=sink.token, sampler=sampler)
    return ProfileResult(profile, images)


def scores_for(profile, method: str, session: ModelSession | None = None, progress=None, token=None):
    from core.pruning.scores import compute_head_scores

    pipe = session.loaded.pipe if method in ("ablation", "taylor") and session is not None else None
    return compute_head_scores(profile, method, score_normalization(method), pipe=pipe, progress=progress,
                               token=token)


def score_normalization(method: str) -> str:
    """Taylor scores compare heads within their module (bench_pruning score_choice: 9 checker points lost at 30 %
    of heads removed, against 16 with global normalisation); the others compare across the UNet."""
    return "module" if method == "taylor" else "global"


def _generate_one(pipe, prompt, seed, steps, guidance, size, sink, label):
    from core.generation import generate_images

    def relay(event):
        sink.report(event.done, event.total, f"{label}: {event.message}" if label else event.message)

    start = time.perf_counter()
    [(image, params)] = generate_images(pipe, [prompt], [seed], steps, guidance, (size, size), progress=relay,
                                        token=sink.token)
    return image, params, time.perf_counter() - start


def _compare_images(base_pipe, fragment_pipe, prompt, seed, steps, guidance, size, clip, sink,
                    fragment_context=None) -> dict:
    import contextlib

    from core.quality.evaluate import quality_of_images
    from core.quality.images import difference_image
    from core.quality.metrics import Availability

    base, _, base_s = _generate_one(base_pipe, prompt, seed, steps, guidance, size, sink, "base")
    with fragment_context or contextlib.nullcontext():
        fragment, _, fragment_s = _generate_one(fragment_pipe, prompt, seed, steps, guidance, size, sink,
                                                "fragment")
    scorer, status = clip if clip is not None else (None, Availability(False, "CLIP scorer not loaded"))
    [sample], clip_summary, _ = quality_of_images([prompt], [base], [fragment], scorer, status, [seed])
    return {"prompt": prompt, "seed": seed, "base_image": base, "fragment_image": fragment,
            "difference_image": difference_image(base, fragment), "ssim": sample["ssim"],
            "phash_distance": sample["phash_distance"], "clip_delta": clip_summary.get("delta_mean"),
            "clip_reason": clip_summary.get("reason", ""), "base_latency_s": base_s, "fragment_latency_s": fragment_s}


def preview_job(session: ModelSession, selection, prompt: str, seed: int, steps: int, guidance: float, size: int,
                clip=None, profile=None, config: dict | None = None, progress=None, token=None) -> dict:
    """Base and logically masked fragment for one prompt and seed, with SSIM, pHash, CLIP delta, latencies.

    `clip` is `session.clip`: (ClipScorer or None, Availability). With `config["ffn"]` and a `profile`, the
    FFN neurons that the saved fragment would lose are masked too."""
    from core.pruning.masks import apply_head_masks

    sink = as_sink(progress, token)
    pipe = session.loaded.pipe
    ffn_selection = None
    masked = ["attention heads"]
    if config and config.get("ffn") and profile is not None:
        from core.pruning.ffn import ffn_scores, select_ffn

        ffn_selection = select_ffn(ffn_scores(pipe.unet, profile.ffn_stat()), config["ffn_ratio"])
        masked.append("FFN neurons")
    result = _compare_images(pipe, pipe, prompt, seed, steps, guidance, size, clip, sink,
                             fragment_context=apply_head_masks(pipe.unet, selection, ffn_selection))
    not_previewed = [name for key, name in (("low_rank", "low-rank"), ("precision", "lower precision"))
                     if config and config.get(key)]
    result["note"] = (f"Quick preview: {' and '.join(masked)} masked logically"
                      + (f" ({' and '.join(not_previewed)} only in the saved fragment)" if not_previewed else "")
                      + ". Saved fragments are pruned physically and measured again.")
    return result


def prune_config_from(config: dict):
    """The threshold panel's settings as core's PruneConfig (raises SelectionError with a message if invalid)."""
    from core.pruning.selection import PruneConfig

    value = config["value"] * 100.0 if config["mode"] == "percentile" else config["value"]
    return PruneConfig(mode=config["mode"], value=value, min_heads_per_module=config["min_heads_per_module"],
                       allow_drop_modules=config["min_heads_per_module"] == 0)


def extract_config_from(config: dict):
    from core.pruning.extract import ExtractConfig

    return ExtractConfig(ffn_ratio=config["ffn_ratio"] if config.get("ffn") else 0.0,
                         low_rank_energy=config["low_rank_energy"] if config.get("low_rank") else None,
                         precision=config["precision_dtype"] if config.get("precision") else "fp32")


@dataclass
class SavedFragment:
    path: Any  # pathlib.Path of the fragment folder
    manifest: Any  # core.fragments.FragmentManifest, quality and performance filled
    report_path: Any


def save_job(session: ModelSession, profile, config: dict, out_dir, clip=None, progress=None,
             token=None) -> SavedFragment:
    """Extracts the physical fragment, measures it against the base (quality and performance), writes the
    report beside it and the numbers into its manifest."""
    from pathlib import Path

    from core.fragments import FragmentRequest, extract_fragment, read_manifest
    from core.quality.evaluate import EvalConfig
    from core.quality.metrics import Availability
    from core.quality.perf import GenerationSettings
    from core.report.fragment_source import open_fragment
    from core.report.run import ReportInputs, run_report, write_report_files

    sink = as_sink(progress, token)
    out_dir = Path(out_dir)
    from core.pruning.heal import HealConfig

    heal = HealConfig(steps=int(config["heal_steps"])) if config.get("heal") else HealConfig()
    request = FragmentRequest(prune=prune_config_from(config), score=config["method"],
                              normalize=score_normalization(config["method"]),
                              reduce=extract_config_from(config), heal=heal)
    manifest = extract_fragment(session.loaded, profile, out_dir, request,
                                progress=lambda e: sink.report(e.done, e.total, f"extract: {e.message}"))
    opened = open_fragment(session.loaded, out_dir)
    meta = profile.meta
    settings = GenerationSettings(steps=int(meta["steps"]), guidance=float(meta["guidance"]),
                                  height=int(meta["height"]), width=int(meta["width"]))
    eval_config = EvalConfig(prompts=list(meta["prompts"]), seeds=[int(meta["seeds"][0])], settings=settings,
                             latency_repeats=1, max_batch=1)
    loaded = session.loaded
    inputs = ReportInputs(model={"spec": loaded.name, "name": loaded.name, "family": loaded.family,
                                 "hash": loaded.model_hash}, fragment=opened.info, config=eval_config,
                          device=str(loaded.device), heads_removed=opened.heads_removed,
                          profile_s=(meta.get("timings") or {}).get("total_s"),
                          extract_s=manifest.performance.extraction_seconds)
    scorer, status = clip if clip is not None else (None, Availability(False, "CLIP scorer not loaded"))
    report, evaluation = run_report(loaded.pipe, opened.pipe, inputs, scorer, status,
                                    progress=lambda e: sink.report(e.done, e.total, f"measure: {e.message}"))
    report_path, _ = write_report_files(report, evaluation, out_dir / "report.json")
    opened.write_quality(report, report_path)
    return SavedFragment(out_dir, read_manifest(out_dir), report_path)


def compare_job(session: ModelSession, fragment_dir, prompt: str, seed: int, steps: int, guidance: float,
                size: int, clip=None, progress=None, token=None) -> dict:
    """A saved fragment (physically pruned) against the base for one prompt and seed."""
    from core.report.fragment_source import open_fragment

    sink = as_sink(progress, token)
    sink.report(0, 1, f"opening {fragment_dir}")
    opened = open_fragment(session.loaded, fragment_dir)
    result = _compare_images(session.loaded.pipe, opened.pipe, prompt, seed, steps, guidance, size, clip, sink)
    healing = (opened.info.get("manifest") or {}).get("healing")
    how = "physically pruned" + (f", healed {healing['steps']} steps" if healing else "")
    result["note"] = f"Saved fragment {opened.info['name']} ({how}) against the base model."
    result["fragment_path"] = str(fragment_dir)
    return result
