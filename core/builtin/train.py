"""Trains the built-in `builtin:shapes` model from scratch, reproducibly from a seed, on 2 CPU cores.

    python -m core.builtin.train                      # all stages: vae, unet, clip, then export
    python -m core.builtin.train --stages unet,export --resume

Stages: (a) VAE on drawn scenes, (b) UNet + text encoder jointly on cached latents, (c) the tiny open_clip
model contrastively on the same world. Checkpoints go to --work-dir (a partial run is usable: `--stages export`
ships the newest one); the exported diffusers folder and CLIP weights go to --out (resources/builtin).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

log = logging.getLogger("core.builtin.train")

DEFAULTS = dict(seed=0, vae_steps=250, unet_steps=1600, clip_steps=2600, n_latent_scenes=4000, threads=1,
                vae_batch=16, unet_batch=32, clip_batch=48, decoder_steps=1400)


def _paths(work_dir: Path):
    return dict(vae=work_dir / "vae.pt", decoder=work_dir / "decoder.pt", unet=work_dir / "unet.pt",
                timings=work_dir / "timings.json")


def _record_timing(work_dir: Path, stage: str, seconds: float, steps: int, extra=None):
    path = _paths(work_dir)["timings"]
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[stage] = dict(seconds=round(seconds, 1), steps=steps, **(extra or {}))
    path.write_text(json.dumps(data, indent=2))


def stage_vae(args, work_dir: Path):
    import torch

    from core.builtin.architecture import build_components
    from core.builtin.train_vae import latent_scaling_factor, train_vae

    vae = build_components(args.seed)["vae"]
    start = time.time()
    train_vae(vae, steps=args.vae_steps, seed=args.seed + 1, batch=args.vae_batch)
    factor = latent_scaling_factor(vae, seed=args.seed + 2)
    torch.save({"state": vae.state_dict(), "scaling_factor": factor}, _paths(work_dir)["vae"])
    _record_timing(work_dir, "vae", time.time() - start, args.vae_steps, {"scaling_factor": factor})
    log.info("vae done: scaling factor %.4f", factor)


def stage_decoder(args, work_dir: Path):
    import torch

    from core.builtin.train_vae import finetune_decoder

    vae = _load_vae(work_dir, args.seed, decoder=args.resume)
    start = time.time()
    finetune_decoder(vae, steps=args.decoder_steps, seed=args.seed + 6 + (1000 if args.resume else 0))
    decoder_state = {k: v for k, v in vae.state_dict().items() if k.startswith(("decoder.", "post_quant_conv."))}
    torch.save({"state": decoder_state}, _paths(work_dir)["decoder"])
    _record_timing(work_dir, "decoder", time.time() - start, args.decoder_steps)


def _load_vae(work_dir: Path, seed: int, decoder: bool = True):
    """The trained VAE; with `decoder`, the fine-tuned decoder replaces the jointly trained one when present."""
    import torch

    from core.builtin.architecture import build_components

    saved = torch.load(_paths(work_dir)["vae"], weights_only=True)
    vae = build_components(seed)["vae"]
    vae.load_state_dict(saved["state"])
    decoder_path = _paths(work_dir)["decoder"]
    if decoder and decoder_path.is_file():
        vae.load_state_dict(torch.load(decoder_path, weights_only=True)["state"], strict=False)
    vae.register_to_config(scaling_factor=saved["scaling_factor"])
    return vae.eval()


def stage_unet(args, work_dir: Path):
    import torch

    from core.builtin.architecture import build_components
    from core.builtin.train_data import scenes_and_images
    from core.builtin.train_unet import encode_latents, train_unet_text

    components = build_components(args.seed)
    vae = _load_vae(work_dir, args.seed)
    start = time.time()
    scenes, images = scenes_and_images(args.n_latent_scenes, seed=args.seed + 3, split="train")
    mean, std = encode_latents(vae, images)
    del images
    log.info("encoded %d scenes in %.0f s", len(scenes), time.time() - start)
    unet, text = components["unet"], components["text_encoder"]
    kwargs = {}
    ckpt_path = _paths(work_dir)["unet"]
    if args.resume and ckpt_path.is_file():
        saved = torch.load(ckpt_path, weights_only=True)
        unet.load_state_dict(saved["unet"])
        text.load_state_dict(saved["text"])
        kwargs = dict(start_step=saved["step"], ema_state=(saved["ema_unet"], saved["ema_text"]), opt_state=saved["opt"])
        log.info("resuming unet training at step %d", saved["step"])

    def checkpoint(step, unet, text, ema_unet, ema_text, opt):
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save(dict(step=step, unet=unet.state_dict(), text=text.state_dict(), ema_unet=ema_unet.state_dict(),
                        ema_text=ema_text.state_dict(), opt=opt.state_dict()), tmp)
        tmp.replace(ckpt_path)
        log.info("checkpoint at step %d", step)

    train_unet_text(unet, text, components["tokenizer"], components["scheduler"], mean, std, scenes,
                    vae.config.scaling_factor, steps=args.unet_steps, seed=args.seed + 4, batch=args.unet_batch, checkpoint=checkpoint,
                    **kwargs)
    _record_timing(work_dir, "unet", time.time() - start, args.unet_steps,
                   {"resumed_from": kwargs.get("start_step", 0), "n_latent_scenes": args.n_latent_scenes})


def stage_export(args, work_dir: Path):
    import shutil

    import torch

    from core.builtin.architecture import build_pipeline
    from core.resources import resource_path

    pipe = build_pipeline(args.seed)
    vae = _load_vae(work_dir, args.seed)
    pipe.vae.load_state_dict(vae.state_dict())
    pipe.vae.register_to_config(scaling_factor=vae.config.scaling_factor)
    saved = torch.load(_paths(work_dir)["unet"], weights_only=True)
    pipe.unet.load_state_dict(saved["ema_unet"])
    pipe.text_encoder.load_state_dict(saved["ema_text"])
    target = Path(args.out) / "shapes"
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    pipe.to(torch.float16).save_pretrained(str(staging), safe_serialization=True)
    # The tokenizer is the project's standard CLIP BPE, shipped as plain vocab.json + merges.txt.
    shutil.rmtree(staging / "tokenizer")
    shutil.copytree(resource_path("tokenizers", "clip"), staging / "tokenizer")
    (staging / "training.json").write_text(json.dumps({"unet_step": saved["step"], "seed": args.seed}, indent=2))
    if target.exists():
        shutil.rmtree(target)
    staging.replace(target)
    log.info("exported %s (unet step %d)", target, saved["step"])


def stage_clip(args, work_dir: Path):
    from core.builtin.train_clip import train_and_save_tiny_clip

    start = time.time()
    train_and_save_tiny_clip(Path(args.out) / "clip", steps=args.clip_steps, seed=args.seed + 5, batch=args.clip_batch,
                             resume=args.resume)
    _record_timing(work_dir, "clip", time.time() - start, args.clip_steps)


STAGES = {"vae": stage_vae, "decoder": stage_decoder, "unet": stage_unet, "export": stage_export, "clip": stage_clip}


def main(argv=None) -> int:
    from core.resources import resources_root

    parser = argparse.ArgumentParser(prog="python -m core.builtin.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", default="vae,decoder,unet,export,clip")
    parser.add_argument("--out", default=str(resources_root() / "builtin"))
    parser.add_argument("--work-dir", default="build/builtin_train")
    parser.add_argument("--resume", action="store_true", help="continue UNet training from the work-dir checkpoint, CLIP training from the weights in --out")
    for name, value in DEFAULTS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=value)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    stages = args.stages.split(",")
    for stage in stages:
        if stage not in STAGES:
            parser.error(f"unknown stage {stage!r}; choose from {', '.join(STAGES)}")
    threads = torch.get_num_threads()
    # One thread per process: on shared, oversubscribed cores two OpenMP threads wait on each other.
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    work_dir = Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        for stage in stages:
            log.info("stage %s", stage)
            STAGES[stage](args, work_dir)
    finally:
        torch.set_num_threads(threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
