"""Trains the built-in `builtin:shapes` model from scratch, reproducibly from a seed, on 2 CPU cores.

    python -m core.builtin.train                      # all stages: vae, unet, clip, then export
    python -m core.builtin.train --stages unet,export --resume

Stages: (a) VAE on drawn scenes, (b) UNet + text encoder jointly on cached latents, (c) the tiny open_clip
model contrastively on the same world. With --jobs 2 (the default) stage (c) runs in a second process beside
(a) and (b), one torch thread each. Checkpoints go to --work-dir (a partial run is usable: `--stages export`
ships the newest one); the exported diffusers folder and CLIP weights go to --out (resources/builtin).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

log = logging.getLogger("core.builtin.train")

DEFAULTS = dict(seed=0, vae_steps=2000, unet_steps=6000, clip_steps=4000, n_latent_scenes=10000, threads=1,
                vae_batch=16, unet_batch=32, clip_batch=48, jobs=2)
RECOMMENDED_GUIDANCE = 5.0  # session 4: 0.885 colour+shape at 5 vs 0.819 at 7.5 (bench_builtin, 288 prompts)


def _paths(work_dir: Path):
    return dict(vae=work_dir / "vae.pt", unet=work_dir / "unet.pt", timings=work_dir / "timings.json")


def _record_timing(work_dir: Path, stage: str, wall: float, cpu: float, steps: int | None, extra=None):
    """One file per stage (the CLIP stage runs in its own process at the same time); `_merge_timings` joins them."""
    record = dict(seconds=round(wall, 1), cpu_seconds=round(cpu, 1), steps=steps, **(extra or {}))
    (work_dir / f"timing_{stage}.json").write_text(json.dumps(record, indent=2))


def _merge_timings(work_dir: Path, total_wall: float, stages) -> dict:
    path = _paths(work_dir)["timings"]
    data = json.loads(path.read_text()) if path.is_file() else {}
    for part in sorted(work_dir.glob("timing_*.json")):
        data[part.stem.removeprefix("timing_")] = json.loads(part.read_text())
    data["last_run"] = dict(stages=list(stages), wall_seconds=round(total_wall, 1))
    path.write_text(json.dumps(data, indent=2))
    return data


class _StageClock:
    def __init__(self):
        self.wall, self.cpu = time.time(), time.process_time()

    def elapsed(self):
        return time.time() - self.wall, time.process_time() - self.cpu


def stage_vae(args, work_dir: Path):
    import torch

    from core.builtin.architecture import build_components
    from core.builtin.train_vae import latent_scaling_factor, train_vae

    vae = build_components(args.seed)["vae"]
    clock = _StageClock()
    train_vae(vae, steps=args.vae_steps, seed=args.seed + 1, batch=args.vae_batch)
    factor = latent_scaling_factor(vae, seed=args.seed + 2)
    torch.save({"state": vae.state_dict(), "scaling_factor": factor}, _paths(work_dir)["vae"])
    _record_timing(work_dir, "vae", *clock.elapsed(), args.vae_steps, {"scaling_factor": factor})
    log.info("vae done: scaling factor %.4f", factor)


def _load_vae(work_dir: Path, seed: int):
    """The trained VAE with its latent scaling factor, in eval mode."""
    import torch

    from core.builtin.architecture import build_components

    saved = torch.load(_paths(work_dir)["vae"], weights_only=True)
    vae = build_components(seed)["vae"]
    vae.load_state_dict(saved["state"])
    vae.register_to_config(scaling_factor=saved["scaling_factor"])
    return vae.eval()


def stage_unet(args, work_dir: Path):
    import torch

    from core.builtin.architecture import build_components
    from core.builtin.train_data import scenes_and_images
    from core.builtin.train_unet import encode_latents, prepare_text_encoder, train_unet_text

    components = build_components(args.seed)
    vae = _load_vae(work_dir, args.seed)
    clock = _StageClock()
    scenes, images = scenes_and_images(args.n_latent_scenes, seed=args.seed + 3, split="train", p_two=args.p_two)
    mean, std = encode_latents(vae, images)
    del images
    log.info("encoded %d scenes in %.0f s", len(scenes), clock.elapsed()[0])
    unet, text = components["unet"], prepare_text_encoder(components["text_encoder"], seed=args.seed,
                                                          position_std=args.text_position_std)
    if args.text_encoder == "frozen":
        text.requires_grad_(False)
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
                    progress=_take_free_cores(args), grounding_weight=args.grounding_weight, **kwargs)
    _record_timing(work_dir, "unet", *clock.elapsed(), args.unet_steps,
                   {"resumed_from": kwargs.get("start_step", 0), "n_latent_scenes": args.n_latent_scenes})


def _take_free_cores(args):
    """A progress callback for the UNet stage: once the parallel CLIP process has ended, its core is free, and
    the UNet (the longest stage) continues with one more torch thread."""
    import torch

    def progress(done, total):
        process = args.clip_process
        if process is not None and process.poll() is not None and torch.get_num_threads() == args.threads:
            torch.set_num_threads(args.threads + 1)
            log.info("CLIP stage finished; UNet continues with %d threads from step %d", args.threads + 1, done)

    return progress


def stage_export(args, work_dir: Path):
    import shutil

    import torch

    from core.builtin.architecture import build_pipeline
    from core.loading.model_defaults import DEFAULTS_FILE
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
    recipe = {"unet_step": saved["step"], "seed": args.seed, "unet_steps_scheduled": args.unet_steps,
              "unet_batch": args.unet_batch, "n_latent_scenes": args.n_latent_scenes, "vae_steps": args.vae_steps,
              "text_encoder": args.text_encoder, "p_two": args.p_two, "text_position_std": args.text_position_std,
              "grounding_weight": args.grounding_weight}
    (staging / "training.json").write_text(json.dumps(recipe, indent=2))
    # The guidance the shipped release was measured best at; after retraining, re-measure with
    # bench/bench_builtin.py --guidance and edit headroom.json if another value wins.
    (staging / DEFAULTS_FILE).write_text(json.dumps(
        {"recommended_guidance": RECOMMENDED_GUIDANCE, "why": "recipe default; re-measure after retraining"}, indent=2))
    if target.exists():
        shutil.rmtree(target)
    staging.replace(target)
    log.info("exported %s (unet step %d)", target, saved["step"])


def stage_clip(args, work_dir: Path):
    from core.builtin.train_clip import train_and_save_tiny_clip

    clock = _StageClock()
    train_and_save_tiny_clip(Path(args.out) / "clip", steps=args.clip_steps, seed=args.seed + 5, batch=args.clip_batch,
                             resume=args.resume, extra_colour_p=args.clip_extra_colours, p_two=args.clip_p_two)
    _record_timing(work_dir, "clip", *clock.elapsed(), args.clip_steps)


STAGES = {"vae": stage_vae, "unet": stage_unet, "export": stage_export, "clip": stage_clip}


def _start_clip_process(args):
    """The CLIP stage needs nothing from the others, so with --jobs 2 it trains in a second process (one thread
    each: on two cores that beats one process with two threads)."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "core.builtin.train", "--stages", "clip", "--jobs", "1", "--out", str(args.out),
               "--work-dir", str(args.work_dir), "--seed", str(args.seed), "--clip-steps", str(args.clip_steps),
               "--clip-batch", str(args.clip_batch), "--threads", str(args.threads),
               "--clip-extra-colours", str(args.clip_extra_colours), "--clip-p-two", str(args.clip_p_two)]
    if args.resume:
        command.append("--resume")
    return subprocess.Popen(command)


def main(argv=None) -> int:
    from core.resources import resources_root

    parser = argparse.ArgumentParser(prog="python -m core.builtin.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", default="vae,unet,export,clip")
    parser.add_argument("--out", default=str(resources_root() / "builtin"))
    parser.add_argument("--work-dir", default="build/builtin_train")
    parser.add_argument("--text-encoder", choices=("learned", "frozen"), default="learned",
                        help="frozen: the text encoder stays the bag of fixed token vectors it starts as")
    parser.add_argument("--resume", action="store_true", help="continue UNet training from the work-dir checkpoint, CLIP training from the weights in --out")
    parser.add_argument("--p-two", type=float, default=0.6, help="share of two-object scenes in the UNet's data")
    parser.add_argument("--text-position-std", type=float, default=0.3,
                        help="start the text encoder's position embeddings at this std (0: from zero)")
    parser.add_argument("--grounding-weight", type=float, default=0.1,
                        help="weight of the token-grounding loss (object words attend inside their object; "
                             "core.builtin.attention_grounding); 0 trains on the denoising loss alone")
    parser.add_argument("--clip-extra-colours", type=float, default=0.3,
                        help="share of the tiny CLIP's training objects drawn in colours outside the world "
                             "(core.builtin.train_clip.EXTRA_COLOURS)")
    parser.add_argument("--clip-p-two", type=float, default=0.4, help="share of two-object scenes in the tiny CLIP's data")
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
    started = time.time()
    args.clip_process = None  # read by the UNet stage's progress callback (_take_free_cores)
    if args.jobs > 1 and "clip" in stages and len(stages) > 1:
        stages.remove("clip")
        args.clip_process = _start_clip_process(args)
    clip_process = args.clip_process
    try:
        for stage in stages:
            log.info("stage %s", stage)
            STAGES[stage](args, work_dir)
        if clip_process is not None and clip_process.wait() != 0:
            log.error("the CLIP stage failed (exit %s)", clip_process.returncode)
            return 1
    finally:
        if clip_process is not None and clip_process.poll() is None:
            clip_process.terminate()
            clip_process.wait()
        torch.set_num_threads(threads)
    timings = _merge_timings(work_dir, time.time() - started, args.stages.split(","))
    log.info("done in %.0f s wall-clock", timings["last_run"]["wall_seconds"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
