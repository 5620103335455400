"""Every bad input a user can hand the loader gets a specific, actionable message."""

import json
import pickle
import struct

import pytest
import torch
from safetensors.torch import save_file

from core.errors import (CheckpointNotFoundError, CorruptCheckpointError, ModelLoadError, PickleRefusedError,
                         UnetOnlyCheckpointError, UnknownArchitectureError)
from core.loading import load_model
from core.loading.single_file import convert_pickle_to_safetensors
from core.testing.ldm_export import save_ldm_checkpoint, unet_to_ldm
from core.testing.tiny_models import tiny_pipeline


@pytest.fixture(scope="module")
def sd15_file(tmp_path_factory):
    pipe = tiny_pipeline("sd15")
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    save_ldm_checkpoint(pipe, "sd15", path)
    return path


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        load_model(tmp_path / "nope.safetensors")


def test_truncated_download_is_named(sd15_file, tmp_path):
    data = sd15_file.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(CorruptCheckpointError, match="truncated.*Download it again"):
        load_model(cut)


@pytest.mark.parametrize("payload", [b"", b"\x01\x02", struct.pack("<Q", 10**12) + b"{}", struct.pack("<Q", 5) + b"nojso"])
def test_garbage_header(tmp_path, payload):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(payload)
    with pytest.raises(CorruptCheckpointError):
        load_model(bad)


def test_unrecognised_architecture_says_what_was_found(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"transformer.h.0.attn.c_attn.weight": torch.zeros(4, 4), "lm_head.weight": torch.zeros(2, 4)}, str(path))
    with pytest.raises(UnknownArchitectureError, match=r"found 2 tensors.*Expected a full Stable Diffusion"):
        load_model(path)


def test_unet_only_file_is_named(tmp_path):
    unet = tiny_pipeline("sd15").unet
    path = tmp_path / "unet.safetensors"
    save_file({k: v.contiguous() for k, v in unet_to_ldm(unet).items()}, str(path))
    with pytest.raises(UnetOnlyCheckpointError, match="only a UNet"):
        load_model(path)
    diffusers_layout = tmp_path / "diffusion_pytorch_model.safetensors"
    save_file({k: v.contiguous() for k, v in unet.state_dict().items()}, str(diffusers_layout))
    with pytest.raises(UnetOnlyCheckpointError):
        load_model(diffusers_layout)


def test_lora_file_is_named(tmp_path):
    path = tmp_path / "lora.safetensors"
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 8)}, str(path))
    with pytest.raises(UnknownArchitectureError, match="LoRA"):
        load_model(path)


def test_pickle_refused_without_consent(sd15_file, tmp_path):
    from safetensors.torch import load_file

    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": load_file(str(sd15_file))}, ckpt)
    with pytest.raises(PickleRefusedError, match="--allow-pickle"):
        load_model(ckpt)
    loaded = load_model(ckpt, allow_pickle=True)
    assert loaded.family == "sd15" and loaded.source == "pickle"


class _Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickle_with_code_is_refused_even_with_consent(tmp_path):
    evil = tmp_path / "evil.ckpt"
    with open(evil, "wb") as handle:
        pickle.dump({"state_dict": {"w": _Payload()}}, handle)
    with pytest.raises(PickleRefusedError, match="beyond plain tensors"):
        load_model(evil, allow_pickle=True)


def test_convert_pickle_to_safetensors(tmp_path):
    from safetensors.torch import load_file

    src = tmp_path / "w.pt"
    tensors = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.ones(4)}
    torch.save(tensors, src)
    with pytest.raises(PickleRefusedError):
        convert_pickle_to_safetensors(src, tmp_path / "w.safetensors", allow_pickle=False)
    out = convert_pickle_to_safetensors(src, tmp_path / "w.safetensors", allow_pickle=True)
    back = load_file(str(out))
    assert set(back) == {"a", "b"} and torch.equal(back["a"], tensors["a"])


def test_folder_without_model_index(tmp_path):
    (tmp_path / "unet").mkdir()
    with pytest.raises(ModelLoadError, match="model_index.json"):
        load_model(tmp_path)


def test_unknown_builtin_name():
    with pytest.raises(ModelLoadError, match="builtin:shapes"):
        load_model("builtin:cats")


def test_cli_prints_message_not_traceback(tmp_path, capsys):
    from core.cli.main import main

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 4)
    assert main(["models", "inspect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and "too short" in err


def test_diffusers_folder_round_trip(tmp_path):
    pipe = tiny_pipeline("sd15", seed=5)
    pipe.save_pretrained(tmp_path / "folder", safe_serialization=True)
    index = json.loads((tmp_path / "folder" / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    loaded = load_model(tmp_path / "folder")
    assert loaded.source == "diffusers-folder"
    for key, value in pipe.unet.state_dict().items():
        assert torch.equal(loaded.pipe.unet.state_dict()[key], value)
