"""The .hrprof file: round trip without the model, and clear errors for damaged or foreign files."""

from __future__ import annotations

import json

import pytest
import torch

from core.errors import ProfileFileError
from core.profiling import Profile, profile_unet


@pytest.fixture(scope="module")
def profile():
    from test_profiling_engine import make_unet

    return profile_unet(make_unet(), prompts=2, seeds=[0, 1], steps=2, latent_hw=(8, 8), model_hash="ab" * 32,
                        model_name="tiny")


@pytest.fixture()
def saved(profile, tmp_path):
    return profile.save(tmp_path / "run.hrprof")


def test_round_trip_keeps_every_tensor_and_the_metadata(profile, saved):
    loaded = Profile.load(saved)
    assert loaded.meta == json.loads(json.dumps(profile.meta))
    assert set(loaded.tensors) == set(profile.tensors)
    for key, value in profile.tensors.items():
        assert torch.equal(loaded.tensors[key], value), key
    assert loaded.modules == profile.modules and loaded.ffn_modules == profile.ffn_modules
    for stat in ("energy", "energy_var", "token_mass", "entropy"):
        a, b = profile.head_stat(stat), loaded.head_stat(stat)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(profile.ffn_stat()[k], v) for k, v in loaded.ffn_stat().items())
    m = loaded.meta
    assert m["schema_version"] == 1 and m["model_hash"] == "ab" * 32 and m["seeds"] == [0, 1] and m["steps"] == 2
    assert {"scheduler", "dtype", "device", "timings", "prompts", "modules"} <= set(m)
    assert not list(saved.parent.glob("*.partial"))


def test_check_model_refuses_another_model(saved):
    from types import SimpleNamespace

    loaded = Profile.load(saved)
    loaded.check_model(SimpleNamespace(model_hash="ab" * 32))
    with pytest.raises(ProfileFileError, match="hash"):
        loaded.check_model(SimpleNamespace(model_hash="cd" * 32))


def test_truncated_file(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(ProfileFileError, match="damaged or truncated"):
        Profile.load(saved)


def test_garbage_and_missing_files(tmp_path):
    junk = tmp_path / "junk.hrprof"
    junk.write_bytes(b"\xff" * 64)
    with pytest.raises(ProfileFileError, match="not a readable profile"):
        Profile.load(junk)
    with pytest.raises(ProfileFileError, match="does not exist"):
        Profile.load(tmp_path / "nope.hrprof")


def test_plain_safetensors_is_not_a_profile(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ProfileFileError, match="not a HeadRoom profile"):
        Profile.load(path)


def _rewrite(profile, path, **changes):
    from safetensors.torch import save_file

    meta = dict(profile.meta, **changes)
    save_file({k: v.contiguous() for k, v in profile.tensors.items()}, str(path),
              metadata={"headroom.profile": json.dumps(meta)})


def test_newer_schema_says_update(profile, tmp_path):
    path = tmp_path / "future.hrprof"
    _rewrite(profile, path, schema_version=99)
    with pytest.raises(ProfileFileError, match="Update HeadRoom"):
        Profile.load(path)


def test_metadata_that_contradicts_the_tensors(profile, tmp_path):
    path = tmp_path / "odd.hrprof"
    _rewrite(profile, path, seeds=[0, 1, 2])
    with pytest.raises(ProfileFileError, match="inconsistent"):
        Profile.load(path)


def test_uncond_half_needs_guidance(profile):
    import copy

    no_cfg = copy.copy(profile)
    no_cfg.meta = dict(profile.meta, cfg=False)
    with pytest.raises(ValueError, match="without classifier-free guidance"):
        no_cfg.head_stat("energy", half="uncond")
    assert profile.head_stat("energy", half="uncond").keys() == profile.head_stat("energy").keys()
