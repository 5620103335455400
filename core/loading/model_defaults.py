"""Per-model recommended generation settings: an optional `headroom.json` beside a model's weights.

A model can be at its best at a guidance scale other than the usual 7.5 (the built-in model is measured best at
5). The file holds {"recommended_guidance": 5.0, "why": "..."}; every tool uses that value when the user does not
give one, and the user's own value always wins.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

DEFAULT_GUIDANCE = 7.5
DEFAULTS_FILE = "headroom.json"


def read_model_defaults(folder) -> dict:
    """The `headroom.json` of a model folder as {"recommended_guidance": float}, or {} when there is none.

    A malformed file is an error that names the file (it would otherwise silently change every image)."""
    from core.errors import HeadRoomError

    path = Path(folder) / DEFAULTS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HeadRoomError(f"{path} is not valid JSON ({exc}); fix or delete it.") from exc
    guidance = data.get("recommended_guidance") if isinstance(data, dict) else None
    if guidance is None:
        return {}
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not math.isfinite(guidance) \
            or not 0 <= guidance <= 30:
        raise HeadRoomError(f"{path}: recommended_guidance must be a number from 0 to 30, not {guidance!r}.")
    return {"recommended_guidance": float(guidance)}


def guidance_for(loaded, requested: float | None) -> float:
    """The guidance scale to use: the user's `requested` value, else the model's recommendation, else 7.5."""
    if requested is not None:
        return float(requested)
    return float(loaded.details.get("recommended_guidance", DEFAULT_GUIDANCE))
