"""Recipe sweep for the built-in model: trains several UNet and tiny-CLIP variants side by side (one process each)
and logs held-out quality at checkpoints, so the recipe that `python -m core.builtin.train` runs on 2 CPU cores
is chosen from measurements. Meant for a GPU machine (each variant is a few minutes there); every variant draws
the same seeded batches on the CPU as the real training does.

    python bench/sweep_builtin_recipe.py --device cuda --out reports/sweep --unet-steps 6000 --clip-steps 3000

Writes one JSON line per variant and checkpoint to OUT/sweep.jsonl, the shared VAE's reconstruction check to
OUT/vae.json, weights to --weights (default OUT).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SD_BETAS = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
UNET_VARIANTS = {  # the shipped recipe is "u_base"; each other variant changes one thing
    "u_base": dict(),
    "u_sd_betas": dict(scheduler=SD_BETAS),
    "u_scenes20k": dict(n_scenes=20000),
    "u_lr2e-3": dict(lr=2e-3),
    "u_old_text": dict(prepare_text=False),
    "u_frozen_text": dict(freeze_text=True),
    "u_batch64": dict(batch=64),
    "u_p_two70": dict(p_two=0.7),
    "u_text_lr5x": dict(text_lr_scale=5.0),
    "u_tokens_learned": dict(freeze_tokens=False),
    "u_batch16": dict(batch=16),
    "u_steps2x": dict(steps_scale=2.0),
    "u_p_two70_text5x": dict(p_two=0.7, text_lr_scale=5.0),
    "u_pos_init": dict(position_std=0.3),
    "u_pos_init_ctx": dict(position_std=0.3, layer_output_scale=0.1),
}
CLIP_VARIANTS = {  # the shipped recipe is "c_base" (3 text layers, 2 hard negatives)
    "c_base": dict(),
    "c_text1_neg6": dict(text_layers=1, negatives=6),
    "c_neg6": dict(negatives=6),
    "c_avg_pool": dict(vision_pool="avg"),
    "c_neg6_batch96": dict(negatives=6, batch=96),
}


def _log(out: Path, name: str, row: dict) -> None:
    with open(out / "sweep.jsonl", "a") as f:
        f.write(json.dumps(dict(variant=name, **row)) + "\n")
    print(name, json.dumps(row), flush=True)


def vae_stage(args, out: Path):
    import torch

    from core.builtin.architecture import build_components
    from core.builtin.train_data import scenes_and_images
    from core.builtin.train_vae import latent_scaling_factor, train_vae
    from core.shapes.checker import check_image

    vae = build_components(0)["vae"].to(args.device)
    start = time.time()
    train_vae(vae, steps=args.vae_steps, seed=1, device=args.device)
    seconds = time.time() - start
    factor = latent_scaling_factor(vae, seed=2, device=args.device)
    scenes, images = scenes_and_images(200, seed=999, split="heldout")
    with torch.no_grad():
        rec = vae.decode(vae.encode(images.to(args.device)).latent_dist.mean).sample.cpu()
    rec = ((rec.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    ok = sum(check_image(r, s).colour_shape_ok for r, s in zip(rec, scenes))
    row = dict(steps=args.vae_steps, seconds=round(seconds, 1), scaling_factor=factor, checker_ok=ok / len(scenes))
    (out / "vae.json").write_text(json.dumps(row))
    print("vae", row, flush=True)
    torch.save({"state": vae.cpu().state_dict(), "scaling_factor": factor}, out / "vae.pt")


def unet_variant(name: str, spec: dict, args, out: str):
    import torch

    torch.set_num_threads(1)
    out = Path(out)
    from core.builtin import evaluation
    from core.builtin.architecture import build_components
    from core.builtin.train_data import scenes_and_images
    from core.builtin.train_unet import encode_latents, prepare_text_encoder, train_unet_text
    from core.offline import import_diffusers

    device = args.device
    c = build_components(0)
    if "scheduler" in spec:
        c["scheduler"] = type(c["scheduler"]).from_config({**c["scheduler"].config, **spec["scheduler"]})
    saved = torch.load(out / "vae.pt", weights_only=True)
    vae = c["vae"]
    vae.load_state_dict(saved["state"])
    vae.register_to_config(scaling_factor=saved["scaling_factor"])
    vae.to(device).eval()
    scenes, images = scenes_and_images(spec.get("n_scenes", 10000), seed=3, split="train",
                                       p_two=spec.get("p_two", 0.4))
    mean, std = encode_latents(vae, images.to(device))
    mean, std = mean.cpu(), std.cpu()
    del images
    text = c["text_encoder"]
    if spec.get("prepare_text", True):
        prepare_text_encoder(text, seed=0, freeze_tokens=spec.get("freeze_tokens", True),
                             position_std=spec.get("position_std", 0.0),
                             layer_output_scale=spec.get("layer_output_scale", 0.0))
    if spec.get("freeze_text"):
        text.requires_grad_(False)
    unet = c["unet"].to(device)
    text.to(device)
    prompts = evaluation.heldout_prompt_set(n_single=args.eval_single, n_two=args.eval_two)
    diffusers = import_diffusers()
    start = time.time()

    steps = int(args.unet_steps * spec.get("steps_scale", 1.0))

    def checkpoint(step, unet, text, ema_unet, ema_text, opt):
        pipe = diffusers.StableDiffusionPipeline(vae=vae, unet=ema_unet, text_encoder=ema_text, tokenizer=c["tokenizer"],
                                                 scheduler=c["scheduler"], safety_checker=None, feature_extractor=None,
                                                 requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        row = dict(step=step, train_seconds=round(time.time() - start, 1))
        for guidance in (7.5, 4.0) if step == steps else (7.5,):
            result, _ = evaluation.evaluate_generation(pipe, prompts, guidance=guidance)
            row[f"g{guidance}"] = dict(acc=result["colour_shape_accuracy"], present=result["requested_present_rate"],
                                       by_kind={k: round(v["colour_shape_accuracy"], 3) for k, v in result["by_kind"].items()})
        if step == steps:
            row["attention"] = evaluation.evaluate_attention_mass(pipe, n=16)
            torch.save({"unet": ema_unet.state_dict(), "text": ema_text.state_dict()}, Path(args.weights or out) / f"{name}.pt")
        _log(out, name, row)

    train_unet_text(unet, text, c["tokenizer"], c["scheduler"], mean, std, scenes, saved["scaling_factor"],
                    steps=steps, seed=4, batch=spec.get("batch", 32), lr=spec.get("lr", 1e-3),
                    checkpoint=checkpoint, checkpoint_every=max(1, args.unet_steps // args.checkpoints), log_every=10**9, device=device,
                    text_lr_scale=spec.get("text_lr_scale", 1.0))


def clip_variant(name: str, spec: dict, args, out: str):
    import copy

    import open_clip
    import torch

    torch.set_num_threads(1)
    out = Path(out)
    from core.builtin import evaluation
    from core.builtin.tiny_clip import MODEL_CONFIG, build_tiny_clip
    from core.builtin.train_clip import train_tiny_clip

    _, preprocess, tokenizer = build_tiny_clip(0)
    config = copy.deepcopy(MODEL_CONFIG)
    config["text_cfg"]["layers"] = spec.get("text_layers", config["text_cfg"]["layers"])
    if "vision_pool" in spec:
        config["vision_cfg"]["pool_type"] = spec["vision_pool"]
    torch.manual_seed(0)
    model = open_clip.model.CLIP(**config).to(args.device)
    start = time.time()

    def checkpoint(step, model):
        cpu = copy.deepcopy(model).cpu().eval()
        row = dict(step=step, train_seconds=round(time.time() - start, 1), config=config)
        for split in ("heldout", "train"):
            row[split] = evaluation.evaluate_clip_ranking(cpu, preprocess, tokenizer, n=200, split=split)["top1"]
        model.train()
        _log(out, name, row)
        if step == args.clip_steps:
            torch.save(cpu.state_dict(), Path(args.weights or out) / f"{name}.pt")

    train_tiny_clip(model, tokenizer, steps=args.clip_steps, seed=5, batch=spec.get("batch", 48), negatives=spec.get("negatives", 2),
                    device=args.device, checkpoint=checkpoint, checkpoint_every=max(1, args.clip_steps // args.checkpoints), log_every=10**9)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(ROOT / "reports" / "sweep"))
    parser.add_argument("--vae-steps", type=int, default=1500)
    parser.add_argument("--unet-steps", type=int, default=6000)
    parser.add_argument("--clip-steps", type=int, default=3000)
    parser.add_argument("--weights", help="folder for the variants' final weights (default: --out)")
    parser.add_argument("--checkpoints", type=int, default=6, help="evaluations per run of --unet-steps / --clip-steps")
    parser.add_argument("--eval-single", type=int, default=32, help="held-out single-object prompts per evaluation")
    parser.add_argument("--eval-two", type=int, default=16, help="held-out two-object prompts per evaluation")
    parser.add_argument("--vae-from", help="folder with vae.pt/vae.json from an earlier sweep (skips the VAE stage)")
    parser.add_argument("--only", nargs="*", help="variant names (default: all)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # two OpenMP threads on shared cores spin against each other
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.vae_from:  # a VAE trained by an earlier sweep (its vae.pt and vae.json)
        import shutil

        for name in ("vae.pt", "vae.json"):
            shutil.copy(Path(args.vae_from) / name, out / name)
    else:
        vae_stage(args, out)
    ctx = mp.get_context("spawn")
    jobs = []
    for table, target in ((UNET_VARIANTS, unet_variant), (CLIP_VARIANTS, clip_variant)):
        for name, spec in table.items():
            if args.only and name not in args.only:
                continue
            job = ctx.Process(target=target, args=(name, spec, args, str(out)), name=name)
            job.start()
            jobs.append(job)
    for job in jobs:
        job.join()
        print(job.name, "exit", job.exitcode, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
