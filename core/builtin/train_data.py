"""Training batches drawn from the shapes world: seeded scenes, images as tensors, captions with dropout."""

from __future__ import annotations


def scenes_and_images(n: int, seed: int, split: str = "train", p_two: float = 0.4):
    """`n` seeded scenes and their images as a float tensor (n, 3, 64, 64) in [-1, 1]."""
    import numpy as np
    import torch

    from core.shapes.scene import render, sample_scene

    rng = np.random.default_rng(seed)
    scenes = [sample_scene(rng, split=split, p_two=p_two) for _ in range(n)]
    images = np.stack([render(s)[0] for s in scenes])
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    return scenes, tensor


class CaptionTokens:
    """Tokenises captions to (B, 77) ids with the pipeline's tokenizer; caches repeated captions."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._cache: dict[str, list[int]] = {}

    def __call__(self, captions):
        import torch

        missing = [c for c in dict.fromkeys(captions) if c not in self._cache]
        if missing:
            ids = self.tokenizer(
                missing, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True
            ).input_ids
            self._cache.update(zip(missing, ids))
        return torch.tensor([self._cache[c] for c in captions], dtype=torch.long)
