"""Image conversions shared by the metrics and the report: everything becomes HxWx3 uint8 RGB."""

from __future__ import annotations

import base64
import io

import numpy as np


def to_rgb_array(image) -> np.ndarray:
    """PIL image, numpy array (HxWx3 or HxW, uint8 or float in [0, 1]) or torch tensor (3xHxW in [0, 1])."""
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    if hasattr(image, "detach"):  # torch tensor
        array = image.detach().float().cpu().numpy()
        if array.ndim == 3 and array.shape[0] in (1, 3):
            array = np.moveaxis(array, 0, -1)
    else:
        array = np.asarray(image)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(f"Expected an RGB image (H x W x 3), got an array of shape {array.shape}.")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    array = array[..., :3]
    if array.dtype != np.uint8:
        array = np.clip(np.rint(array.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    return array


def to_pil(image):
    from PIL import Image

    return Image.fromarray(to_rgb_array(image))


def same_size(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"Images must have the same size to be compared: {a.shape} vs {b.shape}.")


def difference_image(a, b, gain: float = 4.0) -> np.ndarray:
    """|a - b| per pixel (mean over channels), amplified by `gain` so small differences are visible."""
    x, y = to_rgb_array(a).astype(np.int16), to_rgb_array(b).astype(np.int16)
    same_size(x, y)
    diff = np.abs(x - y).mean(axis=-1) * gain
    grey = np.clip(diff, 0, 255).astype(np.uint8)
    return np.stack([grey] * 3, axis=-1)


def png_base64(image, scale: int = 1) -> str:
    """A data URI body (base64 PNG); `scale` enlarges small images with nearest-neighbour pixels."""
    pil = to_pil(image)
    if scale > 1:
        from PIL import Image

        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
