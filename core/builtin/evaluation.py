"""Quality measurements of the built-in model on held-out prompts (the numbers of the model card).

- generation: colour+shape (and position) accuracy of generated images, judged by the scikit-image checker;
- tiny CLIP: how often the true caption ranks first among near-miss captions of real scene images;
- cross-attention: share of the colour token's attention mass inside the drawn object's mask;
- latency: median seconds for one 64x64 image at 20 steps.
"""

from __future__ import annotations

import time


def heldout_prompt_set(n_single: int = 32, n_two: int = 16, seed: int = 123):
    """[(scene, prompt, kind)]: scenes holding a held-out colour x shape pair; half the single-object prompts
    and half the two-object prompts use held-out phrasings, the rest training phrasings."""
    import numpy as np

    from core.shapes.captions import random_caption
    from core.shapes.scene import sample_scene

    rng = np.random.default_rng(seed)
    out = []
    for n_objects, count in ((1, n_single), (2, n_two)):
        for i in range(count):
            scene = sample_scene(rng, n_objects=n_objects, split="heldout")
            phrasing = "heldout" if i % 2 else "train"
            kind = f"{'single' if n_objects == 1 else 'two'}-object/{phrasing}-phrasing"
            out.append((scene, random_caption(scene, rng, split=phrasing), kind))
    return out


def generate(pipe, prompts, seed: int, steps: int = 20, guidance: float = 7.5, batch: int = 8):
    """uint8 images (n, 64, 64, 3), image i from generator seed `seed + i`."""
    import numpy as np
    import torch

    images = []
    for start in range(0, len(prompts), batch):
        chunk = prompts[start : start + batch]
        generators = [torch.Generator().manual_seed(seed + start + j) for j in range(len(chunk))]
        result = pipe(list(chunk), num_inference_steps=steps, guidance_scale=guidance, generator=generators,
                      output_type="np", height=64, width=64)
        images.append((np.clip(result.images, 0, 1) * 255).round().astype(np.uint8))
    return np.concatenate(images)


def _summarise(rows, steps: int, guidance: float) -> dict:
    """Accuracies over checker rows, overall and per prompt kind."""
    def share(key, of):
        return sum(r[key] for r in of) / len(of)

    kinds = sorted({r["kind"] for r in rows})
    by_kind = {}
    for kind in kinds:
        of_kind = [r for r in rows if r["kind"] == kind]
        by_kind[kind] = dict(n=len(of_kind), colour_shape_accuracy=share("colour_shape_ok", of_kind),
                             with_position=share("position_ok", of_kind),
                             requested_present=share("requested_present", of_kind))
    return dict(
        n=len(rows), steps=steps, guidance=guidance,
        colour_shape_accuracy=share("colour_shape_ok", rows),
        colour_shape_position_accuracy=share("position_ok", rows),
        # Lenient: every requested colour x shape is drawn, extra objects ignored.
        requested_present_rate=share("requested_present", rows),
        by_kind=by_kind,
    )


def evaluate_generation(pipe, prompt_set, seed: int = 1000, steps: int = 20, guidance: float = 7.5):
    from core.shapes.checker import check_image

    images = generate(pipe, [p for _, p, _ in prompt_set], seed, steps, guidance)
    rows = []
    for image, (scene, prompt, kind) in zip(images, prompt_set):
        verdict = check_image(image, scene)
        rows.append(dict(prompt=prompt, kind=kind, colour_shape_ok=verdict.colour_shape_ok,
                         requested_present=all(verdict.per_object),
                         position_ok=verdict.position_ok,
                         detected=[(d.colour, d.shape, d.position) for d in verdict.detected]))
    return dict(**_summarise(rows, steps, guidance), rows=rows), images


def pool_generation(results: dict) -> dict:
    """One summary of several `evaluate_generation` results ({prompt seed: result}), every prompt counted once."""
    first = next(iter(results.values()))
    rows = [row for result in results.values() for row in result["rows"]]
    return dict(**_summarise(rows, first["steps"], first["guidance"]),
                by_prompt_seed={seed: result["colour_shape_accuracy"] for seed, result in results.items()})


def evaluate_clip_ranking(model, preprocess, tokenizer, n: int = 200, split: str = "heldout", seed: int = 321):
    """Share of real scene images whose canonical caption scores above every alternative caption."""
    import numpy as np
    import torch
    from PIL import Image

    from core.shapes.captions import alternatives, caption
    from core.shapes.scene import render, sample_scene

    rng = np.random.default_rng(seed)
    correct = 0
    with torch.no_grad():
        for _ in range(n):
            scene = sample_scene(rng, split=split)
            texts = [caption(scene)] + alternatives(scene)
            image = preprocess(Image.fromarray(render(scene)[0])).unsqueeze(0)
            image_features = torch.nn.functional.normalize(model.encode_image(image), dim=-1)
            text_features = torch.nn.functional.normalize(model.encode_text(tokenizer(texts)), dim=-1)
            scores = (image_features @ text_features.T)[0]
            correct += int(scores.argmax() == 0)
    return dict(n=n, split=split, top1=correct / n)


def colour_token_index(tokenizer, prompt: str, colour: str) -> int:
    ids = tokenizer(prompt).input_ids
    colour_ids = tokenizer(colour, add_special_tokens=False).input_ids
    if len(colour_ids) != 1 or colour_ids[0] not in ids:
        raise ValueError(f"{colour!r} is not a single token of {prompt!r}")
    return ids.index(colour_ids[0])


def evaluate_attention_mass(pipe, n: int = 12, seed: int = 2000, steps: int = 20, guidance: float = 7.5):
    """Mean share of the colour token's cross-attention mass inside the generated object's mask (single-object
    held-out prompts; images where the checker finds no object of that colour are skipped), with the mask's
    area share (what uniform attention would give) as the chance level."""
    import numpy as np

    from core.builtin.attention_probe import mass_inside_mask, record_cross_attention
    from core.shapes.checker import colour_mask

    prompt_set = [p for p in heldout_prompt_set(n_single=n, n_two=0, seed=seed)]
    shares, chance = [], []
    for i, (scene, prompt, _) in enumerate(prompt_set):
        colour = scene.objects[0].colour
        with record_cross_attention(pipe.unet) as probs:
            image = generate(pipe, [prompt], seed + i, steps, guidance)[0]
        mask = colour_mask(image, colour)
        if mask.sum() < 16:
            continue
        shares.append(mass_inside_mask(probs, colour_token_index(pipe.tokenizer, prompt, colour), mask))
        chance.append(float(mask.mean()))
    return dict(n_measured=len(shares), n_prompts=n, mean_share_inside_mask=float(np.mean(shares)) if shares else None,
                chance_share=float(np.mean(chance)) if chance else None)


def latency(pipe, runs: int = 5, steps: int = 20, prompt: str = "a large red circle on the left"):
    import statistics

    import torch

    generate(pipe, [prompt], 0, steps)  # warm-up
    times = []
    for i in range(runs):
        start = time.perf_counter()
        pipe(prompt, num_inference_steps=steps, generator=torch.Generator().manual_seed(i), output_type="np",
             height=64, width=64)
        times.append(time.perf_counter() - start)
    return dict(runs=runs, steps=steps, median_s=statistics.median(times), min_s=min(times), max_s=max(times),
                torch_threads=torch.get_num_threads())
