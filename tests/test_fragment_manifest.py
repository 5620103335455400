"""The manifest schema: every roadmap v0 field, strict validation, migration from schema 1."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.fragments.manifest import SCHEMA_VERSION, FragmentManifest, ManifestVersionError, parse_manifest

ROADMAP_V0 = {
    "schema_version": 1,
    "base_model": {"name": "sdxl_base_1.0", "hash": "ab" * 32, "framework": "pytorch", "fp_dtype": "fp16"},
    "generation_context": {
        "prompt_embedding_hash": "cd" * 32,
        "text_encoder_version": "openclip_v2",
        "profiling": {"seeds": [1234, 5678], "steps_profiled": 10, "total_steps_full": 50, "timestamp": 1723334400},
    },
    "pruning": {
        "attention_heads_removed": {"unet_block_0.cross_attn": [0, 7, 11], "unet_block_1.self_attn": [3, 5]},
        "head_retention_ratio": 0.72,
        "method": "activation_energy_rank",
        "threshold_params": {"percentile": 30},
    },
    "compression": {
        "low_rank_layers": [{"layer": "unet.mid.attn.q_proj", "rank": 128, "orig_rank": 256, "energy_retained": 0.93}],
        "quantization": {"applied": False},
    },
    "quality_eval": {"clip_delta_mean": 0.015, "lpips_mean": 0.028, "ssim_mean": 0.91, "samples": 20},
    "performance": {"base_peak_vram_mb": 18100, "fragment_peak_vram_mb": 13400, "base_latency_ms": 4800,
                    "fragment_latency_ms": 3600},
    "reuse": {"paraphrase_similarity_metric": "cosine_clip_text", "paraphrases_tested": 5,
              "paraphrase_pass_rate": 0.8},
    "artifacts": {"state_dict_path": "fragments/sdxl/h1_fragment.pt", "manifest_path": "fragments/sdxl/h1_fragment.json"},
}


def _leaf_paths(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict) and k not in ("attention_heads_removed", "threshold_params"):
            yield from _leaf_paths(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"


def test_roadmap_v0_example_migrates_and_keeps_every_field():
    m = parse_manifest(ROADMAP_V0)
    assert m.schema_version == SCHEMA_VERSION
    dumped = m.model_dump(mode="json")
    for path in _leaf_paths(ROADMAP_V0):
        if path == "schema_version":
            continue
        node_in, node_out = ROADMAP_V0, dumped
        for part in path.split("."):
            node_in, node_out = node_in[part], node_out[part]
        if isinstance(node_in, list) and node_in and isinstance(node_in[0], dict):
            assert [{k: d[k] for k in node_in[0]} for d in node_out] == node_in, path
        else:
            assert node_out == node_in, path
    assert m.pruning.attentions_dropped == [] and m.pruning.ffn is None


def test_unknown_fields_are_refused_at_every_level():
    import copy

    for where in (None, "pruning", "compression", "base_model"):
        doc = copy.deepcopy(ROADMAP_V0)
        (doc if where is None else doc[where])["surprise"] = 1
        with pytest.raises(ValidationError, match="surprise"):
            parse_manifest(doc)


def test_versions_newer_or_missing_are_refused_clearly():
    import copy

    doc = copy.deepcopy(ROADMAP_V0)
    doc["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(ManifestVersionError, match="Update HeadRoom"):
        parse_manifest(doc)
    del doc["schema_version"]
    with pytest.raises(ManifestVersionError):
        parse_manifest(doc)


def test_required_fields_are_required():
    import copy

    doc = parse_manifest(ROADMAP_V0).model_dump(mode="json")
    for section, field in (("base_model", "hash"), ("pruning", "head_retention_ratio"), ("pruning", "method")):
        broken = copy.deepcopy(doc)
        del broken[section][field]
        with pytest.raises(ValidationError, match=field):
            FragmentManifest.model_validate(broken)
