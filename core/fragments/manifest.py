"""The fragment manifest: every field of the roadmap's "Fragment Manifest Schema (v0)", extended, validated.

Schema history
- 1: the roadmap's v0 example (schema_version 1): base_model, generation_context, pruning, compression,
  quality_eval, performance, reuse, artifacts.
- 2: adds what a rebuild and an honest size report need: attentions dropped as a whole, FFN neuron
  pruning, the precision tier with its int8 layers, the per-reduction size breakdown, head totals, the
  normalisation of the scores, the state-dict checksum.
- 3 (current): `healing`, the distillation towards the base that followed the reductions (absent: none).
`migrate()` upgrades older manifests.
Unknown fields are refused (`extra="forbid"`): a typo never passes silently.
"""

from __future__ import annotations

import copy
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 3
MANIFEST_NAME = "manifest.json"
STATE_DICT_NAME = "unet.safetensors"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class BaseModelInfo(_Strict):
    name: str
    hash: str
    framework: Literal["pytorch"] = "pytorch"
    fp_dtype: str
    family: Optional[str] = None


class ProfilingInfo(_Strict):
    seeds: list[int] = Field(default_factory=list)
    steps_profiled: Optional[int] = None
    total_steps_full: Optional[int] = None
    timestamp: Optional[int] = None
    prompts: list[str] = Field(default_factory=list)
    scheduler: Optional[str] = None
    guidance: Optional[float] = None
    profile_seconds: Optional[float] = None


class GenerationContext(_Strict):
    prompt_embedding_hash: Optional[str] = None
    text_encoder_version: Optional[str] = None
    profiling: ProfilingInfo = Field(default_factory=ProfilingInfo)


class FfnPruning(_Strict):
    ratio: float
    method: str = "mean_abs_activation_x_out_norm"
    neurons_total: int
    neurons_kept: int
    neurons_removed: dict[str, list[int]] = Field(default_factory=dict)


class Pruning(_Strict):
    attention_heads_removed: dict[str, list[int]] = Field(default_factory=dict)
    attentions_dropped: list[str] = Field(default_factory=list)
    head_retention_ratio: float
    heads_total: Optional[int] = None
    heads_kept: Optional[int] = None
    method: str
    normalize: Optional[str] = None
    threshold_params: dict[str, Any] = Field(default_factory=dict)
    ffn: Optional[FfnPruning] = None


class LowRankLayer(_Strict):
    layer: str
    rank: int
    orig_rank: int
    energy_retained: float
    params_before: Optional[int] = None
    params_after: Optional[int] = None


class Quantization(_Strict):
    applied: bool = False
    dtype: Optional[str] = None  # fp16 | bf16 | int8
    scheme: Optional[str] = None
    compute_dtype: Optional[str] = None
    layers: list[str] = Field(default_factory=list)


class Compression(_Strict):
    low_rank_energy: Optional[float] = None
    low_rank_layers: list[LowRankLayer] = Field(default_factory=list)
    quantization: Quantization = Field(default_factory=Quantization)


class ReductionStep(_Strict):
    reduction: Literal["attention_heads", "ffn_neurons", "low_rank", "precision"]
    params_removed: int
    bytes_removed: int
    details: dict[str, Any] = Field(default_factory=dict)


class SizeReport(_Strict):
    base_params: int
    base_bytes: int
    fragment_params: int
    fragment_bytes: int
    breakdown: list[ReductionStep] = Field(default_factory=list)


class QualityEval(_Strict):
    """Filled by `headroom report` (core.report.manifest_fields) through `update_manifest`."""

    clip_delta_mean: Optional[float] = None
    clip_base_mean: Optional[float] = None
    clip_fragment_mean: Optional[float] = None
    clip_model: Optional[str] = None
    clip_unavailable_reason: Optional[str] = None
    lpips_mean: Optional[float] = None
    lpips_unavailable_reason: Optional[str] = None
    ssim_mean: Optional[float] = None
    phash_distance_mean: Optional[float] = None
    checker_accuracy_base: Optional[float] = None
    checker_accuracy_fragment: Optional[float] = None
    samples: Optional[int] = 0
    prompts: Optional[list[str]] = None
    seeds: Optional[list[int]] = None
    steps: Optional[int] = None
    report_path: Optional[str] = None
    report_created_utc: Optional[str] = None


class Performance(_Strict):
    """`*_vram_mb` hold peak working memory of the device named in `device` (`memory_method` says how)."""

    base_peak_vram_mb: Optional[float] = None
    fragment_peak_vram_mb: Optional[float] = None
    base_latency_ms: Optional[float] = None
    fragment_latency_ms: Optional[float] = None
    device: Optional[str] = None
    memory_method: Optional[str] = None
    memory_reduction: Optional[float] = None
    base_weights_mb: Optional[float] = None
    fragment_weights_mb: Optional[float] = None
    fragment_images_per_min: Optional[float] = None
    batch_speedup: Optional[float] = None
    break_even_variants: Optional[float] = None
    steps: Optional[int] = None
    extraction_seconds: Optional[float] = None


class Reuse(_Strict):
    paraphrase_similarity_metric: Optional[str] = None
    paraphrases_tested: int = 0
    paraphrase_pass_rate: Optional[float] = None


class Artifacts(_Strict):
    state_dict_path: str = STATE_DICT_NAME
    manifest_path: str = MANIFEST_NAME
    state_dict_sha256: Optional[str] = None


class Healing(_Strict):
    """A short distillation of the reduced UNet towards its base (core.pruning.heal); seeded, so re-running it
    on the same base rebuilds the same weights."""

    method: str = "distillation_to_base"
    steps: int
    lr: float
    batch: int
    seed: int
    images_per_prompt: int
    sampling_steps: int
    uncond_fraction: float
    prompts: list[str]
    loss_first: Optional[float] = None
    loss_last: Optional[float] = None
    seconds: Optional[float] = None


class FragmentManifest(_Strict):
    schema_version: Literal[3] = SCHEMA_VERSION
    created_by: str = "headroom"
    created_at: Optional[int] = None
    base_model: BaseModelInfo
    generation_context: GenerationContext = Field(default_factory=GenerationContext)
    pruning: Pruning
    compression: Compression = Field(default_factory=Compression)
    size: Optional[SizeReport] = None
    quality_eval: QualityEval = Field(default_factory=QualityEval)
    performance: Performance = Field(default_factory=Performance)
    reuse: Reuse = Field(default_factory=Reuse)
    artifacts: Artifacts = Field(default_factory=Artifacts)
    healing: Optional[Healing] = None


def _migrate_1_to_2(doc: dict) -> dict:
    doc = copy.deepcopy(doc)
    doc["schema_version"] = 2
    q = doc.get("compression", {}).get("quantization")
    if isinstance(q, dict):
        known = {"applied", "dtype", "scheme", "compute_dtype", "layers"}
        extra = {k: v for k, v in q.items() if k not in known}
        if extra and not q.get("scheme"):
            q["scheme"] = ", ".join(f"{k}={v}" for k, v in extra.items())
        doc["compression"]["quantization"] = {k: v for k, v in q.items() if k in known}
    return doc


def _migrate_2_to_3(doc: dict) -> dict:
    return dict(copy.deepcopy(doc), schema_version=3)  # version 2 fragments were never healed


MIGRATIONS = {1: _migrate_1_to_2, 2: _migrate_2_to_3}


class ManifestVersionError(ValueError):
    pass


def migrate(doc: dict) -> dict:
    """Upgrades a manifest dict from any known older schema version to the current one."""
    version = doc.get("schema_version")
    if not isinstance(version, int):
        raise ManifestVersionError("The manifest has no integer schema_version.")
    if version > SCHEMA_VERSION:
        raise ManifestVersionError(
            f"This fragment uses manifest schema {version}; this HeadRoom reads up to {SCHEMA_VERSION}. "
            "Update HeadRoom to open it."
        )
    while version < SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise ManifestVersionError(f"No migration from manifest schema {version}.")
        doc = MIGRATIONS[version](doc)
        version = doc["schema_version"]
    return doc


def parse_manifest(doc: dict) -> FragmentManifest:
    return FragmentManifest.model_validate(migrate(doc))
