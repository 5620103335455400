"""Test-only converter: a diffusers SD pipeline -> one state dict in the original Stable Diffusion key layout.

This is the layout of the single `.safetensors` files people download (A1111/ComfyUI checkpoints), so
tests can write a tiny model in it and load it back through exactly the path a user's file takes.
"""

from __future__ import annotations

_RESNET = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
           ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection")]
_UNET_TOP = [("time_embedding.linear_1", "time_embed.0"), ("time_embedding.linear_2", "time_embed.2"),
             ("add_embedding.linear_1", "label_emb.0.0"), ("add_embedding.linear_2", "label_emb.0.2"),
             ("conv_in", "input_blocks.0.0"), ("conv_norm_out", "out.0"), ("conv_out", "out.2")]


def _unet_prefix_map(unet) -> list[tuple[str, str, bool]]:
    """(diffusers prefix, ldm prefix, is_resnet) pairs."""
    cfg = unet.config
    per = cfg.layers_per_block
    n = len(cfg.block_out_channels)
    pairs = []
    for i in range(n):
        for j in range(per):
            pairs.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{(per + 1) * i + j + 1}.0.", True))
            pairs.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{(per + 1) * i + j + 1}.1.", False))
        if i < n - 1:
            pairs.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(per + 1) * (i + 1)}.0.op.", False))
        has_attention = "CrossAttn" in cfg.up_block_types[i]
        for j in range(per + 1):
            pairs.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{(per + 1) * i + j}.0.", True))
            pairs.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{(per + 1) * i + j}.1.", False))
        if i < n - 1:
            pairs.append((f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{(per + 1) * i + per}.{2 if has_attention else 1}.", False))
    pairs.append(("mid_block.attentions.0.", "middle_block.1.", False))
    for j in range(2):
        pairs.append((f"mid_block.resnets.{j}.", f"middle_block.{2 * j}.", True))
    return pairs


def unet_to_ldm(unet) -> dict:
    out = {}
    prefixes = _unet_prefix_map(unet)
    for key, value in unet.state_dict().items():
        new = None
        for hf, sd in _UNET_TOP:
            if key.startswith(hf + "."):
                new = sd + key[len(hf):]
        for hf, sd, is_resnet in prefixes:
            if key.startswith(hf):
                rest = key[len(hf):]
                if is_resnet:
                    for a, b in _RESNET:
                        if rest.startswith(a + "."):
                            rest = b + rest[len(a):]
                new = sd + rest
                break
        if new is None:
            raise KeyError(f"no ldm name for UNet key {key}")
        out["model.diffusion_model." + new] = value
    return out


def vae_to_ldm(vae) -> dict:
    n = len(vae.config.block_out_channels)
    out = {}
    for key, value in vae.state_dict().items():
        new = key
        for i in range(n):
            new = new.replace(f"encoder.down_blocks.{i}.resnets.", f"encoder.down.{i}.block.")
            new = new.replace(f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample.")
            new = new.replace(f"decoder.up_blocks.{i}.resnets.", f"decoder.up.{n - 1 - i}.block.")
            new = new.replace(f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{n - 1 - i}.upsample.")
        for j in range(2):
            new = new.replace(f"mid_block.resnets.{j}.", f"mid.block_{j + 1}.")
        new = new.replace("mid_block.attentions.0.", "mid.attn_1.")
        new = new.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
        if ".attn_1." in new:
            new = (new.replace("group_norm.", "norm.").replace("to_q.", "q.").replace("to_k.", "k.")
                   .replace("to_v.", "v.").replace("to_out.0.", "proj_out."))
            if new.endswith("weight") and value.ndim == 2:
                value = value[:, :, None, None]  # ldm stores these as 1x1 convolutions
        out["first_stage_model." + new] = value
    return out


def _hf_clip_state(text_encoder) -> dict:
    """State dict with the `text_model.` prefix the original checkpoints use (transformers 5 drops it)."""
    out = {}
    for key, value in text_encoder.state_dict().items():
        if key.startswith("text_projection.") or key.startswith("text_model."):
            out[key] = value
        else:
            out["text_model." + key] = value
    return out


def clip_to_ldm(text_encoder, prefix: str) -> dict:
    """HF CLIPTextModel layout, as SD 1.x and SDXL's first encoder store it."""
    return {prefix + k: v for k, v in _hf_clip_state(text_encoder).items() if k.startswith("text_model.")}


def open_clip_to_ldm(text_encoder, prefix: str) -> dict:
    """open_clip layout, as SD 2.x and SDXL's second encoder store it (q/k/v fused into in_proj)."""
    sd = _hf_clip_state(text_encoder)
    out = {
        prefix + "token_embedding.weight": sd["text_model.embeddings.token_embedding.weight"],
        prefix + "positional_embedding": sd["text_model.embeddings.position_embedding.weight"],
        prefix + "ln_final.weight": sd["text_model.final_layer_norm.weight"],
        prefix + "ln_final.bias": sd["text_model.final_layer_norm.bias"],
    }
    if "text_projection.weight" in sd:
        out[prefix + "text_projection"] = sd["text_projection.weight"].T.contiguous()
    else:
        hidden = sd["text_model.final_layer_norm.weight"].shape[0]
        import torch

        out[prefix + "text_projection"] = torch.eye(hidden)
    for i in range(text_encoder.config.num_hidden_layers):
        src = f"text_model.encoder.layers.{i}."
        dst = f"{prefix}transformer.resblocks.{i}."
        for part in ("weight", "bias"):
            out[f"{dst}attn.in_proj_{part}"] = __import__("torch").cat(
                [sd[f"{src}self_attn.{p}_proj.{part}"] for p in ("q", "k", "v")]
            )
            out[f"{dst}attn.out_proj.{part}"] = sd[f"{src}self_attn.out_proj.{part}"]
            out[f"{dst}ln_1.{part}"] = sd[f"{src}layer_norm1.{part}"]
            out[f"{dst}ln_2.{part}"] = sd[f"{src}layer_norm2.{part}"]
            out[f"{dst}mlp.c_fc.{part}"] = sd[f"{src}mlp.fc1.{part}"]
            out[f"{dst}mlp.c_proj.{part}"] = sd[f"{src}mlp.fc2.{part}"]
    return out


def pipeline_to_ldm(pipe, family: str) -> dict:
    state = {**unet_to_ldm(pipe.unet), **vae_to_ldm(pipe.vae)}
    if family == "sd15":
        state.update(clip_to_ldm(pipe.text_encoder, "cond_stage_model.transformer."))
    elif family == "sd2":
        state.update(open_clip_to_ldm(pipe.text_encoder, "cond_stage_model.model."))
    elif family == "sdxl":
        state.update(clip_to_ldm(pipe.text_encoder, "conditioner.embedders.0.transformer."))
        state.update(open_clip_to_ldm(pipe.text_encoder_2, "conditioner.embedders.1.model."))
    else:
        raise ValueError(family)
    return {k: v.detach().contiguous().clone() for k, v in state.items()}


def save_ldm_checkpoint(pipe, family: str, path) -> None:
    from safetensors.torch import save_file

    save_file(pipe_state := pipeline_to_ldm(pipe, family), str(path))
    del pipe_state
