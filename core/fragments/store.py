"""Fragment on disk: `unet.safetensors` (the reduced UNet) + `manifest.json`. Atomic writes; strict loads.

Loading rebuilds the base UNet architecture on the meta device from the base model's config, re-applies the
recorded structure (heads, dropped attentions, FFN neurons, low-rank layers, precision), then loads the
tensors strictly. A base model whose hash differs from the manifest's is refused.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import BaseModelMismatchError, FragmentError
from core.fragments.manifest import (
    MANIFEST_NAME,
    STATE_DICT_NAME,
    FragmentManifest,
    ManifestVersionError,
    parse_manifest,
)
from core.io import save_safetensors_atomic, write_json_atomic


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _state_dict_for_saving(unet) -> dict:
    out = {}
    seen = {}
    for key, tensor in unet.state_dict().items():
        t = tensor.detach()
        if t.device.type == "meta":
            raise FragmentError(f"Cannot save {key}: it has no data (meta tensor).")
        ptr = t.data_ptr()
        # safetensors refuses shared or non-contiguous storage: give each tensor its own contiguous copy.
        whole = t.untyped_storage().nbytes() == t.numel() * t.element_size()
        if ptr in seen or not t.is_contiguous() or not whole:
            t = t.clone().contiguous()
        seen[ptr] = key
        out[key] = t.cpu()
    return out


def save_fragment(out_dir, unet, manifest: FragmentManifest) -> FragmentManifest:
    """Writes the state dict, then the manifest (with the state dict's checksum). Both atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = _state_dict_for_saving(unet)
    target = out / STATE_DICT_NAME
    save_safetensors_atomic(tensors, target, metadata={"format": "pt", "headroom": "fragment"})
    manifest = manifest.model_copy(deep=True)
    manifest.artifacts.state_dict_path = STATE_DICT_NAME
    manifest.artifacts.manifest_path = MANIFEST_NAME
    manifest.artifacts.state_dict_sha256 = _sha256_file(target)
    if manifest.created_at is None:
        manifest.created_at = int(time.time())
    FragmentManifest.model_validate(manifest.model_dump())  # never write an invalid manifest
    write_json_atomic(out / MANIFEST_NAME, manifest.model_dump(mode="json"))
    return manifest


def read_manifest(fragment_dir) -> FragmentManifest:
    path = Path(fragment_dir) / MANIFEST_NAME
    if not path.is_file():
        raise FragmentError(f"No fragment at {fragment_dir}: {MANIFEST_NAME} is missing.")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FragmentError(f"The fragment manifest {path} is not readable JSON ({exc}).") from exc
    try:
        return parse_manifest(doc)
    except ManifestVersionError as exc:
        raise FragmentError(str(exc)) from exc
    except ValueError as exc:  # pydantic.ValidationError
        raise FragmentError(f"The fragment manifest {path} does not match the schema:\n{exc}") from exc


def check_base(manifest: FragmentManifest, base_hash: str, base_name: str = "?") -> None:
    if manifest.base_model.hash != base_hash:
        raise BaseModelMismatchError(
            f"This fragment was made from {manifest.base_model.name} (hash {manifest.base_model.hash[:12]}...), "
            f"but the open model {base_name} has hash {str(base_hash)[:12]}.... A fragment only works on the "
            "exact model it was cut from: open that model, or extract a new fragment from this one."
        )


def apply_structure(unet, manifest: FragmentManifest, from_weights: bool = False, before_precision=None) -> None:
    """Re-applies the recorded structure to a base-architecture UNet. On meta tensors (`from_weights=False`)
    low-rank and int8 layers are created empty, to load a fragment's tensors into; with `from_weights` they are
    computed from the UNet's own weights (rebuilding a fragment from its base and manifest alone)."""
    from core.pruning.lowrank import restructure_low_rank
    from core.pruning.precision import apply_precision
    from core.pruning.surgery import drop_attention, prune_attention_heads, prune_ffn

    p = manifest.pruning
    try:
        for name, removed in p.attention_heads_removed.items():
            if name in p.attentions_dropped:
                continue
            attn = unet.get_submodule(name)
            prune_attention_heads(attn, sorted(set(range(attn.heads)) - set(removed)))
        for name in p.attentions_dropped:
            drop_attention(unet, name)
        if p.ffn is not None:
            prune_ffn(unet, p.ffn.neurons_removed)
        restructure_low_rank(unet, [layer.model_dump() for layer in manifest.compression.low_rank_layers],
                             from_weights=from_weights)
        if before_precision is not None:
            before_precision(unet)
        q = manifest.compression.quantization
        if q.applied and q.dtype:
            apply_precision(unet, q.dtype, rest_dtype=q.compute_dtype if q.dtype == "int8" else None,
                            layers=q.layers if q.dtype == "int8" else None, structure_only=not from_weights)
    except AttributeError as exc:
        raise FragmentError(
            f"The fragment's structure does not fit this base model's architecture ({exc})."
        ) from exc


@dataclass
class LoadedFragment:
    unet: Any
    manifest: FragmentManifest
    path: Path

    def __iter__(self):  # `unet, manifest = load_fragment(...)`
        return iter((self.unet, self.manifest))


def rebuild_from_base(base, manifest: FragmentManifest, progress=None, token=None):
    """The fragment's UNet recomputed from the base model's weights and the manifest alone (no weights file):
    the same slices, the same low-rank ranks, the same int8 rounding, and the same seeded healing run when the
    manifest records one (that needs `base.pipe`, and takes as long as it took at extraction). The base is left
    untouched."""
    import torch

    from core.pruning.extract import copy_sharing_weights

    check_base(manifest, base.model_hash, getattr(base, "name", "?"))
    unet = copy_sharing_weights(base.unet)
    heal = None
    if manifest.healing is not None:
        from core.pruning.heal import HealConfig, heal_unet

        record = manifest.healing
        config = HealConfig(**{k: getattr(record, k) for k in HealConfig.__dataclass_fields__})

        def heal(work):
            with torch.enable_grad():
                heal_unet(work, base.pipe, record.prompts, config, progress=progress, token=token)

    with torch.no_grad():
        apply_structure(unet, manifest, from_weights=True, before_precision=heal)
    return unet.eval()


def load_fragment(fragment_dir, base, device=None, verify_checksum: bool = True) -> LoadedFragment:
    """Rebuilds the reduced UNet. `base` is the `LoadedModel` the fragment was cut from. Returns a
    `LoadedFragment` (.unet, .manifest, .path), which also unpacks as (unet, manifest)."""
    from safetensors.torch import load_file

    from core.pruning.structure import meta_unet_from_config

    fragment_dir = Path(fragment_dir)
    manifest = read_manifest(fragment_dir)
    check_base(manifest, base.model_hash, getattr(base, "name", "?"))
    weights = fragment_dir / manifest.artifacts.state_dict_path
    if not weights.is_file():
        raise FragmentError(f"The fragment at {fragment_dir} has no weights file {weights.name}.")
    if verify_checksum and manifest.artifacts.state_dict_sha256:
        if _sha256_file(weights) != manifest.artifacts.state_dict_sha256:
            raise FragmentError(
                f"{weights} does not match the checksum in its manifest: the file is damaged or was replaced. "
                "Extract the fragment again."
            )
    unet = meta_unet_from_config(base.unet.config)
    apply_structure(unet, manifest)
    device = device or base.unet.device
    try:
        state = load_file(str(weights), device=str(device))
    except Exception as exc:  # safetensors raises its own error types for truncated files
        raise FragmentError(f"Could not read {weights} ({exc}); the file is damaged. Extract again.") from exc
    try:
        unet.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise FragmentError(f"The fragment's weights do not fit its recorded structure: {exc}") from exc
    left = [n for n, t in list(unet.named_parameters()) + list(unet.named_buffers()) if t.device.type == "meta"]
    if left:
        raise FragmentError(f"The fragment is missing weights for {left[:3]}.")
    return LoadedFragment(unet.eval(), manifest, fragment_dir)


def update_manifest(fragment_dir, quality_eval: dict | None = None, performance: dict | None = None,
                    reuse: dict | None = None) -> Path:
    """Replaces the quality_eval / performance / reuse sections (validated), atomically. Returns the path."""
    from core.fragments.manifest import Performance, QualityEval, Reuse

    manifest = read_manifest(fragment_dir)
    try:
        if quality_eval is not None:
            manifest.quality_eval = QualityEval.model_validate(quality_eval)
        if performance is not None:
            extraction = manifest.performance.extraction_seconds
            manifest.performance = Performance.model_validate(performance)
            if manifest.performance.extraction_seconds is None:
                manifest.performance.extraction_seconds = extraction
        if reuse is not None:
            manifest.reuse = Reuse.model_validate(reuse)
    except ValueError as exc:
        raise FragmentError(f"Cannot record these results in the manifest: {exc}") from exc
    path = Path(fragment_dir) / MANIFEST_NAME
    write_json_atomic(path, manifest.model_dump(mode="json"))
    return path


def apply_fragment(target, fragment_dir, base_hash: str | None = None, device=None):
    """Swaps the reduced UNet into a `LoadedModel` (or a pipeline, given `base_hash`). Returns the manifest."""
    pipe = getattr(target, "pipe", target)
    if hasattr(target, "model_hash"):
        base = target
    else:
        if base_hash is None:
            raise FragmentError("apply_fragment on a bare pipeline needs the base model's hash.")

        class _Base:
            model_hash = base_hash
            name = "the open model"
            unet = pipe.unet

        base = _Base()
    base_dtype = pipe.unet.dtype
    unet, manifest = load_fragment(fragment_dir, base, device=device)
    if unet.dtype != base_dtype:
        if manifest.compression.quantization.applied:
            cast_io(unet, base_dtype)  # a deliberately lower-precision fragment keeps its dtype
        else:
            unet.to(base_dtype)  # the base was opened in another dtype than the fragment was cut in: follow it
    pipe.register_modules(unet=unet)
    return manifest


def cast_io(unet, outer_dtype) -> None:
    """Lets a lower-precision UNet sit in a pipeline of another dtype: floating inputs are cast to the UNet's
    dtype on the way in, the output back to `outer_dtype` on the way out (text encoder and VAE unchanged)."""
    import torch

    def _cast(obj, dtype):
        if torch.is_tensor(obj) and obj.is_floating_point():
            return obj.to(dtype)
        if isinstance(obj, dict):
            return {k: _cast(v, dtype) for k, v in obj.items()}
        if isinstance(obj, (tuple, list)):
            return type(obj)(_cast(v, dtype) for v in obj)
        return obj

    def pre(module, args, kwargs):
        dtype = module.dtype
        return _cast(args, dtype), _cast(kwargs, dtype)

    def post(module, args, kwargs, output):
        if hasattr(output, "sample"):
            output.sample = output.sample.to(outer_dtype)
            return output
        return _cast(output, outer_dtype)

    unet.register_forward_pre_hook(pre, with_kwargs=True)
    unet.register_forward_hook(post, with_kwargs=True)
