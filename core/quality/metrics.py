"""Image quality metrics between a base image and a fragment image made from the same prompt and seed.

SSIM (scikit-image) and perceptual-hash distance (imagehash) need no weights. The CLIP text-image score uses
open_clip with *local* weights only (`pretrained=<file>`); LPIPS is reported unavailable unless it can run
from local files. Nothing here ever downloads anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import HeadRoomError
from core.quality.images import same_size, to_pil, to_rgb_array


class MetricUnavailableError(HeadRoomError):
    """A metric cannot be computed offline here; the message says why and what would make it available."""


def ssim(a, b) -> float:
    """Structural similarity of two RGB images (1.0 = identical), on 0..255 pixel values."""
    from skimage.metrics import structural_similarity

    x, y = to_rgb_array(a), to_rgb_array(b)
    same_size(x, y)
    side = min(x.shape[0], x.shape[1])
    win = min(7, side if side % 2 == 1 else side - 1)
    if win < 3:
        raise ValueError(f"Images of {x.shape[1]}x{x.shape[0]} pixels are too small for SSIM (3x3 at least).")
    # float32 input makes scikit-image compute in float32: ~30% faster than uint8 (promoted to float64).
    return float(structural_similarity(x.astype(np.float32), y.astype(np.float32), channel_axis=-1,
                                       data_range=255, win_size=win))


def phash_distance(a, b, hash_size: int = 8) -> int:
    """Hamming distance between the perceptual hashes of two images (0 = same hash; max hash_size**2)."""
    import imagehash

    x, y = to_rgb_array(a), to_rgb_array(b)
    same_size(x, y)
    return int(imagehash.phash(to_pil(x), hash_size=hash_size) - imagehash.phash(to_pil(y), hash_size=hash_size))


class ClipScorer:
    """CLIP text-image score: 100 x cosine similarity of open_clip image and text embeddings.

    The cosine is not clamped at 0, so a poorly matching image always scores lower than a better one.
    """

    def __init__(self, model, preprocess, tokenizer, device: str = "cpu", name: str = "custom", weights: str = ""):
        self.model = model.eval().to(device)
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.device = device
        self.name = name
        self.weights = weights

    @classmethod
    def from_local_weights(
        cls, model_name: str, weights_path, config_path=None, device: str = "cpu"
    ) -> ClipScorer:
        """Builds an open_clip model `model_name` (a known name, or one defined by `config_path`, a JSON with
        embed_dim / vision_cfg / text_cfg) and loads `weights_path`, a local file. Never downloads."""
        from core.offline import ensure_offline

        ensure_offline()
        weights_path = Path(weights_path).expanduser()
        if not weights_path.is_file():
            raise MetricUnavailableError(
                f"CLIP weights file {weights_path} does not exist. HeadRoom never downloads CLIP weights: "
                "point --clip-weights at a local open_clip checkpoint file."
            )
        import open_clip

        if config_path is not None:
            config_path = Path(config_path).expanduser()
            if not config_path.is_file():
                raise MetricUnavailableError(f"CLIP model config {config_path} does not exist.")
            open_clip.add_model_config(str(config_path))
        if model_name not in open_clip.list_models():
            raise MetricUnavailableError(
                f"Unknown open_clip model {model_name!r}: give a known name (e.g. ViT-B-32) or a config JSON."
            )
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=str(weights_path), device=device
            )
        except (RuntimeError, KeyError, ValueError) as exc:
            raise MetricUnavailableError(
                f"Could not load CLIP weights {weights_path} into open_clip model {model_name!r}: {exc}"
            ) from exc
        tokenizer = open_clip.get_tokenizer(model_name)
        return cls(model, preprocess, tokenizer, device=device, name=model_name, weights=str(weights_path))

    def image_embeddings(self, images: Sequence, batch_size: int = 16):
        import torch

        chunks = []
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                batch = torch.stack([self.preprocess(to_pil(im)) for im in images[start : start + batch_size]])
                features = self.model.encode_image(batch.to(self.device)).float()
                chunks.append(torch.nn.functional.normalize(features, dim=-1))
        return torch.cat(chunks)

    def text_embeddings(self, prompts: Sequence[str], batch_size: int = 64):
        import torch

        chunks = []
        with torch.no_grad():
            for start in range(0, len(prompts), batch_size):
                tokens = self.tokenizer(list(prompts[start : start + batch_size])).to(self.device)
                features = self.model.encode_text(tokens).float()
                chunks.append(torch.nn.functional.normalize(features, dim=-1))
        return torch.cat(chunks)

    def score(self, images: Sequence, prompts: Sequence[str]) -> np.ndarray:
        """One score per (image, prompt) pair."""
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts: give one prompt per image.")
        if not len(images):
            return np.zeros(0)
        unique = sorted(set(prompts))
        text = self.text_embeddings(unique)
        index = [unique.index(p) for p in prompts]
        image = self.image_embeddings(images)
        cosine = (image * text[index]).sum(dim=-1)
        return (100.0 * cosine).cpu().numpy().astype(np.float64)

    def describe(self) -> dict:
        return {"model": self.name, "weights": self.weights}


@dataclass
class Availability:
    available: bool
    reason: str = ""

    def as_dict(self) -> dict:
        return {"available": self.available, "reason": self.reason}


def clip_scorer_for(
    loaded, clip_model: str | None = None, clip_weights=None, clip_config=None, device: str = "cpu"
) -> tuple[ClipScorer | None, Availability]:
    """The CLIP scorer for a model: a configured local checkpoint, else the built-in tiny CLIP for the
    built-in model. Returns (None, reason) when none is available, instead of failing the whole report."""
    if clip_weights is not None:
        try:
            scorer = ClipScorer.from_local_weights(clip_model or "ViT-L-14", clip_weights, clip_config, device)
        except MetricUnavailableError as exc:
            return None, Availability(False, str(exc))
        return scorer, Availability(True, f"open_clip {scorer.name} from {scorer.weights}")
    if getattr(loaded, "family", None) == "builtin":
        try:
            from core.builtin.tiny_clip import load_tiny_clip
        except ImportError:
            return None, Availability(False, "the built-in tiny CLIP (core.builtin.tiny_clip) is not in this build")
        try:
            model, preprocess, tokenizer = load_tiny_clip(device=device)
        except (HeadRoomError, OSError, RuntimeError) as exc:
            return None, Availability(False, f"the built-in tiny CLIP could not be loaded: {exc}")
        return ClipScorer(model, preprocess, tokenizer, device, name="builtin-tiny-clip"), Availability(
            True, "built-in tiny CLIP"
        )
    return None, Availability(
        False,
        "no local CLIP weights configured for this model (HeadRoom never downloads them): "
        "pass --clip-weights FILE [--clip-model NAME] to score text-image agreement",
    )


def lpips_availability(backbone_weights=None) -> Availability:
    """LPIPS needs a pretrained AlexNet/VGG backbone plus LPIPS' linear layers; both only from local files."""
    if backbone_weights is None:
        return Availability(
            False,
            "LPIPS needs pretrained backbone weights (AlexNet/VGG) that HeadRoom never downloads; "
            "no local backbone weights file is configured (--lpips-weights)",
        )
    if not Path(backbone_weights).expanduser().is_file():
        return Availability(False, f"the configured LPIPS backbone weights file {backbone_weights} does not exist")
    try:
        import lpips  # noqa: F401
    except ImportError:
        return Availability(
            False, "the `lpips` package (LPIPS' calibrated linear layers) is not installed in this build"
        )
    return Availability(False, "LPIPS with a local backbone is not wired up in this build yet")
