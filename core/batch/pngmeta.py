"""Reading back the A1111 `parameters` PNG text chunk that `core.generation.save_png_with_parameters` writes."""

from __future__ import annotations


def read_parameters(path) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.info.get("parameters")
    except (OSError, ValueError):
        return None
