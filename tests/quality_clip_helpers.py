"""A randomly initialised, tiny open_clip model saved to a local file, for tests of the CLIP scorer.

Built from a custom config registered with `open_clip.add_model_config`, then loaded back through
`pretrained=<local file>` exactly as a user's checkpoint would be. Nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_CLIP_NAME = "headroom-test-tiny-clip"
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def write_tiny_clip(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """Writes (config JSON, weights file) for a seeded random tiny CLIP; returns both paths."""
    import open_clip
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / f"{TINY_CLIP_NAME}.json"
    config_path.write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(str(config_path))
    torch.manual_seed(seed)
    model = open_clip.create_model(TINY_CLIP_NAME, pretrained=None)
    weights_path = folder / "tiny_clip.pt"
    torch.save(model.state_dict(), weights_path)
    return config_path, weights_path
