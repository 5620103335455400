"""`load_model(spec)`: one entry point for every kind of model a user can open."""

from __future__ import annotations

from pathlib import Path

from core.errors import CheckpointNotFoundError, ModelLoadError

PICKLE_SUFFIXES = {".ckpt", ".pt", ".pth", ".bin"}


def _resolve_dtype(dtype):
    import torch

    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        names = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
                 "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
        if dtype not in names:
            raise ModelLoadError(f"Unknown dtype {dtype!r}; choose one of fp32, fp16, bf16.")
        return names[dtype]
    return dtype


def load_model(spec: str, device: str = "cpu", dtype=None, allow_pickle: bool = False, progress=None):
    """Loads `builtin:shapes`, a diffusers folder, a single-file .safetensors, or (with consent) a pickle."""
    from core.builtin.loading import BUILTIN_NAME, load_builtin

    dtype = _resolve_dtype(dtype)
    spec = str(spec)
    if spec.startswith("builtin:"):
        if spec != BUILTIN_NAME:
            raise ModelLoadError(f"Unknown built-in model {spec!r}; the built-in model is {BUILTIN_NAME!r}.")
        return load_builtin(device=device, dtype=dtype)
    path = Path(spec).expanduser()
    if not path.exists():
        raise CheckpointNotFoundError(
            f"No model at {path}: the file or folder does not exist. Check the path, or use {BUILTIN_NAME!r}."
        )
    if path.is_dir():
        from core.loading.diffusers_folder import load_diffusers_folder

        return load_diffusers_folder(path, device=device, dtype=dtype)
    from core.loading.single_file import load_single_file

    return load_single_file(path, device=device, dtype=dtype, allow_pickle=allow_pickle)
