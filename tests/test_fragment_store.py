"""Fragments on disk: a real profile -> extract -> save -> load round trip, base checks, damage, atomicity."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from core.errors import BaseModelMismatchError, FragmentError
from core.fragments import apply_fragment, extract_fragment, load_fragment, read_manifest, update_manifest
from core.fragments.extract import FragmentRequest
from core.fragments.manifest import MANIFEST_NAME, STATE_DICT_NAME
from core.pruning.extract import ExtractConfig
from core.pruning.masks import apply_head_masks
from core.pruning.selection import PruneConfig
from core.pruning.tiny import builtin_unet_inputs, tiny_inputs, tiny_unet


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    pass



class _Loaded:
    """A LoadedModel-like wrapper around a bare UNet (tiny architecture-exact models have no weights file)."""

    def __init__(self, unet, family, model_hash):
        self.pipe = type("Pipe", (), {"unet": unet})()
        self.family, self.name, self.model_hash = family, f"tiny-{family}", model_hash

    @property
    def unet(self):
        return self.pipe.unet


@pytest.fixture(scope="module")
def builtin_loaded():
    from core.loading import load_model

    return load_model("builtin:shapes")


@pytest.fixture(scope="module")
def builtin_profile(builtin_loaded):
    from core.profiling import profile_model

    return profile_model(builtin_loaded, ["a red circle", "a blue square on the left"], seeds=[0, 1], steps=1)


def test_builtin_round_trip_equals_masked_model(builtin_loaded, builtin_profile, tmp_path):
    request = FragmentRequest(prune=PruneConfig("percentile", 35), score="energy")
    manifest = extract_fragment(builtin_loaded, builtin_profile, tmp_path, request)
    assert (tmp_path / STATE_DICT_NAME).is_file() and (tmp_path / MANIFEST_NAME).is_file()
    assert not list(tmp_path.glob("*.partial"))
    on_disk = read_manifest(tmp_path)
    assert on_disk == manifest
    assert on_disk.base_model.hash == builtin_loaded.model_hash
    assert on_disk.generation_context.profiling.seeds == [0, 1]
    assert on_disk.generation_context.prompt_embedding_hash and len(on_disk.generation_context.prompt_embedding_hash) == 64
    removed = sum(len(v) for v in on_disk.pruning.attention_heads_removed.values())
    assert removed == on_disk.pruning.heads_total - on_disk.pruning.heads_kept > 0
    assert on_disk.pruning.head_retention_ratio == pytest.approx(on_disk.pruning.heads_kept / on_disk.pruning.heads_total)

    fragment = load_fragment(tmp_path, builtin_loaded)
    # The loaded fragment computes what the base model computes with the same heads masked.
    from core.pruning.scores import compute_head_scores
    from core.pruning.selection import HeadSelection
    from core.pruning.structure import UnetStructure

    structure = UnetStructure.from_unet(builtin_loaded.unet)
    sel = HeadSelection.from_removed(structure, on_disk.pruning.attention_heads_removed,
                                     on_disk.pruning.attentions_dropped)
    inputs = builtin_unet_inputs(builtin_loaded.unet, seed=3)
    with torch.no_grad():
        with apply_head_masks(builtin_loaded.unet, sel):
            masked = builtin_loaded.unet(**inputs).sample
        out = fragment.unet(**inputs).sample
    torch.testing.assert_close(out, masked, rtol=1e-4, atol=1e-5)
    assert compute_head_scores(builtin_profile, "energy").method == on_disk.pruning.method


def test_wrong_base_is_refused_with_a_clear_message(builtin_loaded, builtin_profile, tmp_path):
    extract_fragment(builtin_loaded, builtin_profile, tmp_path, FragmentRequest())
    other = copy.copy(builtin_loaded)
    other.model_hash = "f" * 64
    with pytest.raises(BaseModelMismatchError, match="only works on the exact model"):
        load_fragment(tmp_path, other)
    with pytest.raises(BaseModelMismatchError):
        apply_fragment(builtin_loaded.pipe, tmp_path, base_hash="0" * 64)


def test_damaged_or_edited_fragments_are_refused(builtin_loaded, builtin_profile, tmp_path):
    extract_fragment(builtin_loaded, builtin_profile, tmp_path, FragmentRequest())
    doc = json.loads((tmp_path / MANIFEST_NAME).read_text())
    doc["pruning"]["head_retention"] = 0.5  # a typo'd field
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(doc))
    with pytest.raises(FragmentError, match="does not match the schema"):
        load_fragment(tmp_path, builtin_loaded)
    del doc["pruning"]["head_retention"]
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(doc))
    weights = tmp_path / STATE_DICT_NAME
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(FragmentError, match="checksum"):
        load_fragment(tmp_path, builtin_loaded)
    with pytest.raises(FragmentError, match="missing"):
        load_fragment(tmp_path / "nowhere", builtin_loaded)


def test_update_manifest_validates_and_keeps_the_rest(builtin_loaded, builtin_profile, tmp_path):
    extract_fragment(builtin_loaded, builtin_profile, tmp_path, FragmentRequest())
    update_manifest(tmp_path, quality_eval={"clip_delta_mean": 0.01, "ssim_mean": 0.9, "samples": 4},
                    performance={"base_latency_ms": 120.0, "fragment_latency_ms": 90.0, "device": "cpu"})
    m = read_manifest(tmp_path)
    assert m.quality_eval.ssim_mean == 0.9 and m.performance.fragment_latency_ms == 90.0
    assert m.performance.extraction_seconds is not None and m.pruning.heads_total
    with pytest.raises(FragmentError, match="Cannot record"):
        update_manifest(tmp_path, quality_eval={"clip_score_typo": 1.0})


@pytest.mark.parametrize("family", ["sd2", "sdxl"])
def test_all_reductions_round_trip_on_tiny_families(family, tmp_path):
    from core.profiling import profile_unet

    unet = tiny_unet(family, seed=2)
    profile = profile_unet(unet, prompts=1, seeds=[0, 1], steps=1, latent_hw=(8, 8), n_tokens=7,
                           model_hash="a" * 64, family=family)
    loaded = _Loaded(unet, family, "a" * 64)
    request = FragmentRequest(prune=PruneConfig("retention", 0.5, allow_drop_modules=True), score="mass",
                              reduce=ExtractConfig(ffn_ratio=0.5, low_rank_energy=0.6, precision="int8"))
    manifest = extract_fragment(loaded, profile, tmp_path, request)
    assert manifest.pruning.ffn.neurons_kept < manifest.pruning.ffn.neurons_total
    assert manifest.compression.low_rank_layers and manifest.compression.quantization.dtype == "int8"
    steps = {s.reduction: s for s in manifest.size.breakdown}
    assert all(steps[k].bytes_removed > 0 for k in ("attention_heads", "ffn_neurons", "low_rank", "precision"))

    from core.pruning.extract import reduce_unet
    from core.pruning.ffn import FfnSelection
    from core.pruning.selection import HeadSelection
    from core.pruning.structure import UnetStructure, ff_modules

    fragment = load_fragment(tmp_path, loaded)
    # Rebuild from base + manifest alone (no fragment weights) and compare outputs.
    structure = UnetStructure.from_unet(unet)
    sel = HeadSelection.from_removed(structure, manifest.pruning.attention_heads_removed,
                                     manifest.pruning.attentions_dropped)
    kept = {}
    for name, ff in ff_modules(unet):
        k = torch.ones(ff.net[2].in_features, dtype=torch.bool)
        k[manifest.pruning.ffn.neurons_removed.get(name, [])] = False
        kept[name] = k.numpy()
    inputs = tiny_inputs(unet, seed=9)
    from core.fragments import rebuild_from_base

    with torch.no_grad():
        rebuilt = reduce_unet(unet, sel, FfnSelection(kept), request.reduce).unet
        from_manifest = rebuild_from_base(loaded, manifest)
        expected = fragment.unet(**inputs).sample
        torch.testing.assert_close(expected, rebuilt(**inputs).sample, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(expected, from_manifest(**inputs).sample, rtol=1e-3, atol=1e-4)
    assert sum(t.numel() * t.element_size() for t in fragment.unet.state_dict().values()) == manifest.size.fragment_bytes


def test_profile_of_another_model_and_cancel_write_nothing(builtin_loaded, builtin_profile, tmp_path):
    import copy as _copy

    from core.errors import CancelledError, ProfileFileError
    from core.progress import CancelToken

    foreign = _copy.copy(builtin_profile)
    foreign.meta = dict(builtin_profile.meta, model_hash="e" * 64)
    with pytest.raises(ProfileFileError, match="profile"):
        extract_fragment(builtin_loaded, foreign, tmp_path / "a", FragmentRequest())
    assert not (tmp_path / "a").exists()

    token = CancelToken()
    events = []

    def on_progress(event):
        events.append(event.message)
        if len(events) == 2:
            token.cancel()

    with pytest.raises(CancelledError):
        extract_fragment(builtin_loaded, builtin_profile, tmp_path / "b", FragmentRequest(), progress=on_progress,
                         token=token)
    assert not (tmp_path / "b" / MANIFEST_NAME).exists() and not (tmp_path / "b" / STATE_DICT_NAME).exists()
    assert events[0] == "scoring heads"


def test_ffn_pruning_without_ffn_statistics_is_explained(builtin_loaded, builtin_profile, tmp_path):
    from core.errors import HeadRoomError

    class NoFfnProfile:
        meta, modules = builtin_profile.meta, builtin_profile.modules

        def head_stat(self, stat="energy", half="cond"):
            return builtin_profile.head_stat(stat, half)

        def ffn_stat(self, half="cond"):
            raise ValueError("This profile was made without FFN statistics.")

    request = FragmentRequest(reduce=ExtractConfig(ffn_ratio=0.3))
    with pytest.raises(HeadRoomError, match="without --ffn"):
        extract_fragment(builtin_loaded, NoFfnProfile(), tmp_path / "f", request)
    assert not (tmp_path / "f").exists()


def test_apply_fragment_follows_the_open_dtype_or_keeps_a_precision_tier(builtin_loaded, builtin_profile, tmp_path):
    from core.loading import load_model

    plain, halved = tmp_path / "plain", tmp_path / "fp16"
    extract_fragment(builtin_loaded, builtin_profile, plain, FragmentRequest())
    extract_fragment(builtin_loaded, builtin_profile, halved, FragmentRequest(reduce=ExtractConfig(precision="fp16")))
    opened_bf16 = load_model("builtin:shapes", dtype="bf16")
    apply_fragment(opened_bf16, plain)
    assert opened_bf16.pipe.unet.dtype == torch.bfloat16  # follows the model as the user opened it
    opened_fp32 = load_model("builtin:shapes")
    apply_fragment(opened_fp32, halved)
    assert opened_fp32.pipe.unet.dtype == torch.float16  # the fp16 tier is kept, its I/O is cast
    inputs = builtin_unet_inputs(opened_fp32.pipe.unet, seed=1)
    with torch.no_grad():
        out = opened_fp32.pipe.unet(**inputs).sample
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
