"""Stage (c): the tiny open_clip model, trained contrastively on drawn scenes with hard-negative captions.

Each image is scored against every caption in the batch plus captions of near-miss scenes (one colour, shape
or position changed, same phrasing), so the model learns exactly the distinctions the quality check asks of it.
Only the training split of colour x shape pairs and phrasings is seen, as images and as captions: a near miss
that would name a held-out pair is never used as a negative. (Until session 5 it was; the model then learned
that "red triangle" never describes an image, and ranked held-out pairs below their near misses.)

With `extra_colour_p` > 0 some objects are drawn in colours outside the world (pink, cyan, brown, black) with
every shape: more colour x shape variety teaches shape features that do not depend on the colour, which is what
ranking a never-seen pair (a red triangle) needs. The held-out pairs themselves are still never shown.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
EXTRA_COLOURS = {"pink": (245, 130, 200), "cyan": (40, 200, 220), "brown": (125, 75, 35), "black": (25, 25, 25)}


def clip_pixels(images_uint8):
    """(n, 64, 64, 3) uint8 -> normalised (n, 3, 64, 64) float, as open_clip's preprocess does for 64x64 images."""
    import torch

    x = torch.as_tensor(images_uint8).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def _with_extra_colours(scene, rng, p: float):
    """`scene` with each object's colour swapped, with probability `p`, for an extra colour (objects stay distinct)."""
    from dataclasses import replace

    from core.shapes.scene import Scene

    objects = list(scene.objects)
    for i, obj in enumerate(objects):
        if rng.random() < p:
            taken = {o.colour for o in objects}
            options = [c for c in EXTRA_COLOURS if c not in taken]
            objects[i] = replace(obj, colour=options[int(rng.integers(len(options)))])
    return Scene(tuple(objects))


def _batch(rng, batch: int, negatives: int, extra_colour_p: float = 0.0, p_two: float = 0.4):
    import numpy as np

    from core.shapes.captions import TRAIN_TEMPLATES, alternative_scenes, caption
    from core.shapes.scene import render, sample_scene
    from core.shapes.world import COLOURS, is_heldout_combo

    palette = {**COLOURS, **EXTRA_COLOURS}
    images, positives, hard = [], [], []
    for _ in range(batch):
        scene = sample_scene(rng, split="train", p_two=p_two)
        if extra_colour_p > 0:
            scene = _with_extra_colours(scene, rng, extra_colour_p)
        images.append(render(scene, palette=palette)[0])
        template = TRAIN_TEMPLATES[int(rng.integers(len(TRAIN_TEMPLATES)))] if rng.random() < 0.7 else None
        variant = int(rng.integers(2))
        text = caption(scene, template, variant) if template else caption(scene)
        positives.append(text)
        options = [
            t for t in dict.fromkeys(
                caption(s, template, variant) if template else caption(s)
                for s in alternative_scenes(scene)
                if not any(is_heldout_combo(o.colour, o.shape) for o in s.objects)
            ) if t != text
        ]
        for j in rng.permutation(len(options))[:negatives]:
            hard.append(options[int(j)])
    return np.stack(images), positives, hard


def train_tiny_clip(model, tokenizer, steps: int, seed: int, batch: int = 48, negatives: int = 2, lr: float = 1e-3,
                    warmup: int = 50, log_every: int = 50, device: str = "cpu", checkpoint=None, checkpoint_every: int = 0,
                    extra_colour_p: float = 0.0, p_two: float = 0.4):
    import numpy as np
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    model.train()
    start = time.time()
    for step in range(steps):
        images, positives, hard = _batch(rng, batch, negatives, extra_colour_p, p_two)
        image_features = F.normalize(model.encode_image(clip_pixels(images).to(device)), dim=-1)
        text_features = F.normalize(model.encode_text(tokenizer(positives + hard).to(device)), dim=-1)
        logits = model.logit_scale.exp().clamp(max=100) * image_features @ text_features.T
        target = torch.arange(batch, device=device)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits[:, :batch].T, target)) / 2
        for group in opt.param_groups:
            group["lr"] = float(lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * step / steps)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % log_every == 0 or step == steps - 1:
            accuracy = (logits.argmax(dim=1) == target).float().mean().item()
            log.info("clip step %d/%d loss %.4f batch-acc %.2f (%.0f s)", step, steps, loss.item(), accuracy,
                     time.time() - start)
        if checkpoint is not None and checkpoint_every and (step + 1) % checkpoint_every == 0:
            checkpoint(step + 1, model)
    model.eval()
    return model


def train_and_save_tiny_clip(folder, steps: int, seed: int, batch: int = 96, resume: bool = False,
                             extra_colour_p: float = 0.0, p_two: float = 0.4):
    """Trains from a seeded random init (or, with `resume`, continues from the weights in `folder`) and saves."""
    from pathlib import Path

    from core.builtin.tiny_clip import WEIGHTS_FILE, build_tiny_clip, save_tiny_clip

    model, _, tokenizer = build_tiny_clip(seed)
    weights = Path(folder) / WEIGHTS_FILE
    if resume and weights.is_file():
        from safetensors.torch import load_file

        model.load_state_dict({k: v.float() for k, v in load_file(str(weights)).items()})
        log.info("continuing tiny CLIP training from %s", weights)
        seed += 1000
    train_tiny_clip(model, tokenizer, steps=steps, seed=seed, batch=batch, extra_colour_p=extra_colour_p, p_two=p_two)
    save_tiny_clip(model, folder)
    log.info("saved tiny CLIP to %s", folder)
