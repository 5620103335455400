"""Opens a fragment folder next to its base model for the report: a second pipeline that shares the base's
VAE and text encoder and runs the fragment's UNet, plus what the manifest says (prompts, steps, times).

Goes through the fragment API (`core.fragments`); the manifest's quality_eval / performance sections are
written back through it too, atomically.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import FragmentError
from core.report.manifest_fields import performance_from_report, quality_eval_from_report


@dataclass
class OpenedFragment:
    pipe: Any
    info: dict  # path, name, manifest (dict) for the report
    prompts: list = field(default_factory=list)
    steps: int | None = None
    heads_removed: int | None = None
    write_quality: Callable = None  # (report, report_path) -> path of the manifest written


def _cast_floats(value, dtype):
    import torch

    if torch.is_tensor(value):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, dict):
        return {k: _cast_floats(v, dtype) for k, v in value.items()}
    return value


def bridge_unet_dtype(unet, pipeline_dtype) -> bool:
    """Lets a lower-precision fragment UNet (fp16 / bf16 tier) run inside a float32 pipeline, as UIs do:
    floating inputs are cast to the UNet's dtype and its output back to the pipeline's. True if bridged."""
    import torch

    unet_dtype = unet.dtype
    if unet_dtype == pipeline_dtype or not unet_dtype.is_floating_point:
        return False

    def before(_module, args, kwargs):
        return tuple(_cast_floats(a, unet_dtype) for a in args), _cast_floats(kwargs, unet_dtype)

    def after(_module, _args, _kwargs, output):
        if isinstance(output, tuple):
            return tuple(_cast_floats(o, pipeline_dtype) for o in output)
        if torch.is_tensor(getattr(output, "sample", None)):
            output.sample = output.sample.to(pipeline_dtype)
        return output

    unet.register_forward_pre_hook(before, with_kwargs=True)
    unet.register_forward_hook(after, with_kwargs=True)
    return True


def pipeline_with_unet(base_pipe, unet):
    """A pipeline of the same class sharing every component of `base_pipe` except its UNet (a fragment UNet in
    another precision is bridged to the pipeline's dtype)."""
    components = dict(base_pipe.components)
    components["unet"] = unet
    encoder = getattr(base_pipe, "text_encoder", None)
    bridge_unet_dtype(unet, encoder.dtype if encoder is not None else base_pipe.unet.dtype)
    pipe = type(base_pipe)(**components)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return pipe


def _manifest_dict(manifest) -> dict:
    if manifest is None:
        return {}
    if hasattr(manifest, "model_dump"):
        return manifest.model_dump(mode="json")
    return dict(manifest)


def _heads_removed(manifest: dict) -> int | None:
    pruning = manifest.get("pruning") or {}
    total, kept = pruning.get("heads_total"), pruning.get("heads_kept")
    if isinstance(total, int) and isinstance(kept, int):
        return total - kept  # includes the heads of attentions dropped as a whole
    removed = pruning.get("attention_heads_removed")
    if isinstance(removed, dict) and not pruning.get("attentions_dropped"):
        return sum(len(v) for v in removed.values())
    return None  # the report then counts heads in the two UNets


def open_fragment(loaded, fragment_dir) -> OpenedFragment:
    fragment_dir = Path(fragment_dir).expanduser()
    if not fragment_dir.is_dir():
        raise FragmentError(f"No fragment folder at {fragment_dir}: give the folder `headroom extract` wrote.")
    try:
        from core import fragments
    except ImportError:
        raise FragmentError("This build cannot open fragments: the fragment module (core.fragments) is missing.") \
            from None
    opened = fragments.load_fragment(fragment_dir, loaded, device=loaded.unet.device)
    unet = getattr(opened, "unet", None)
    pipe = getattr(opened, "pipe", None)
    if pipe is None or pipe is loaded.pipe:
        if unet is None:
            raise FragmentError(f"The fragment at {fragment_dir} did not give a UNet to run.")
        pipe = pipeline_with_unet(loaded.pipe, unet)
    manifest_obj = getattr(opened, "manifest", None)
    manifest = _manifest_dict(manifest_obj)
    profiling = (manifest.get("generation_context") or {}).get("profiling") or {}
    prompts = profiling.get("prompts") or manifest.get("prompts") or []
    steps = next((profiling.get(k) for k in ("total_steps_full", "steps_profiled")
                  if isinstance(profiling.get(k), int) and profiling.get(k) > 0), None)

    def write_quality(report: dict, report_path) -> Path:
        return update_manifest(fragment_dir, report, report_path)

    return OpenedFragment(
        pipe=pipe,
        info={"path": str(fragment_dir), "name": fragment_dir.name, "manifest": manifest},
        prompts=list(prompts), steps=steps, heads_removed=_heads_removed(manifest), write_quality=write_quality)


def update_manifest(fragment_dir, report: dict, report_path=None) -> Path:
    """Sets quality_eval and performance in the fragment's manifest through the fragment API."""
    from core import fragments

    quality = quality_eval_from_report(report, report_path)
    performance = performance_from_report(report)
    if performance.get("break_even_variants") == "never":
        # The manifest holds a number or null; "never" stays in the report, and the manifest's latencies
        # (fragment not faster) say the same.
        performance["break_even_variants"] = None
    if hasattr(fragments, "update_manifest"):
        return fragments.update_manifest(fragment_dir, quality_eval=quality, performance=performance)
    raise FragmentError("The fragment API cannot update manifests in this build.")
