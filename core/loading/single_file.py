"""Single-file checkpoints as people download them: .safetensors in the original SD layout, or consented pickles."""

from __future__ import annotations

import tempfile
from pathlib import Path

from core.errors import CorruptCheckpointError, ModelLoadError, PickleRefusedError
from core.loading.file_hash import cached_file_sha256

PICKLE_SUFFIXES = {".ckpt", ".pt", ".pth", ".bin"}
PICKLE_CONSENT_HINT = (
    "Pickle files can run arbitrary code when opened, so HeadRoom refuses them by default. If you trust its "
    "source, allow it with --allow-pickle (CLI) or the 'Allow pickle files' checkbox (app); it is then read with "
    "torch.load(weights_only=True), which accepts tensors only. Better: convert it once with "
    "`headroom models convert FILE --allow-pickle` and use the .safetensors file."
)


def read_pickle_state_dict(path, allow_pickle: bool) -> dict:
    """Reads a .ckpt/.pt with `weights_only=True`, only when the user consented."""
    import pickle

    import torch

    path = Path(path)
    if not allow_pickle:
        raise PickleRefusedError(f"{path.name} is a pickle ({path.suffix}) file. {PICKLE_CONSENT_HINT}")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise PickleRefusedError(
            f"{path.name} holds Python objects beyond plain tensors, which weights_only loading refuses to run "
            f"({str(exc).splitlines()[0]}). Ask its author for a .safetensors file."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CorruptCheckpointError(f"{path.name} could not be read as a PyTorch checkpoint: {exc}") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CorruptCheckpointError(f"{path.name} does not contain a state dict of tensors.")
    return obj


def convert_pickle_to_safetensors(src, dst, allow_pickle: bool) -> Path:
    from core.io import save_safetensors_atomic

    state = read_pickle_state_dict(src, allow_pickle)
    tensors = {k: v.contiguous().clone() for k, v in state.items()}
    save_safetensors_atomic(tensors, dst, metadata={"converted_from": Path(src).name})
    return Path(dst)


def load_single_file(path, device: str = "cpu", dtype=None, allow_pickle: bool = False):
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        with tempfile.TemporaryDirectory(prefix="headroom-convert-") as tmp:
            converted = convert_pickle_to_safetensors(path, Path(tmp) / (path.stem + ".safetensors"), allow_pickle)
            loaded = _load_safetensors(converted, device, dtype, model_hash=cached_file_sha256(path))
        loaded.source = "pickle"
        loaded.name = path.name
        loaded.details["path"] = str(path)
        return loaded
    if suffix != ".safetensors":
        raise ModelLoadError(
            f"{path.name}: unsupported file type {suffix or '(none)'}. Open a .safetensors checkpoint, a diffusers "
            "folder, or a .ckpt with consent."
        )
    return _load_safetensors(path, device, dtype)


def _load_safetensors(path: Path, device, dtype, model_hash: str | None = None):
    import torch

    from core.loading.detect import detect_architecture
    from core.loading.header_tokenizers import load_tokenizers
    from core.loading.model import LoadedModel
    from core.loading.reference_configs import FAMILIES, write_family_folder
    from core.loading.safetensors_header import read_header
    from core.offline import import_diffusers

    header = read_header(path)
    arch = detect_architecture(header.names, header.shape)
    diffusers = import_diffusers()
    pipeline_cls = getattr(diffusers, FAMILIES[arch.family]["pipeline"])
    kwargs = load_tokenizers(arch.family)
    if arch.family != "sdxl":
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    with tempfile.TemporaryDirectory(prefix="headroom-config-") as config_dir:
        write_family_folder(arch.family, config_dir, unet=arch.unet, vae=arch.vae, text_encoder=arch.text_encoder,
                            text_encoder_2=arch.text_encoder_2)
        try:
            pipe = pipeline_cls.from_single_file(
                str(path), config=config_dir, local_files_only=True, torch_dtype=dtype or torch.float32, **kwargs
            )
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise ModelLoadError(
                f"{path.name} was recognised as {arch.label} but its weights could not be loaded: "
                f"{str(exc).splitlines()[0]}"
            ) from exc
    pipe.set_progress_bar_config(disable=True)
    if str(device) != "cpu":
        pipe = pipe.to(device)
    return LoadedModel(pipe, arch.family, path.name, model_hash or cached_file_sha256(path), "single-file",
                       {"path": str(path), "notes": arch.notes})
