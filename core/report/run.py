"""`run_report`: base and fragment pipelines -> evaluation -> versioned report (+ regression gate) -> files.

A plain compute function (progress sink + cancel token), used by `headroom report` and usable by the app.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import HeadRoomError
from core.io import write_json_atomic, write_text_atomic
from core.progress import as_sink
from core.quality.evaluate import EvalConfig, evaluate_pair
from core.quality.metrics import Availability, ClipScorer
from core.report.build import build_report
from core.report.html import render_html
from core.report.regression import compare_metrics, environment_changes, load_report


@dataclass
class ReportInputs:
    model: dict  # spec, name, family, hash
    fragment: dict  # path, name, manifest (dict, optional), ...
    config: EvalConfig
    device: str = "cpu"
    heads_removed: int | None = None
    profile_s: float | None = None
    extract_s: float | None = None
    profiling_overhead: float | None = None
    reuse_eval_path: str | None = None
    baseline_path: str | None = None
    tolerances: dict = field(default_factory=dict)
    lpips_weights: str | None = None


def read_prompts_file(path) -> list:
    """One prompt per line (blank lines and lines starting with # are skipped), or a JSON list of strings."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HeadRoomError(f"Prompts file {path} does not exist.") from None
    except UnicodeDecodeError:
        raise HeadRoomError(f"Prompts file {path} is not UTF-8 text: one prompt per line expected.") from None
    if text.lstrip().startswith("["):
        try:
            prompts = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HeadRoomError(f"Prompts file {path} looks like JSON but does not parse: {exc}") from None
        if not all(isinstance(p, str) for p in prompts):
            raise HeadRoomError(f"Prompts file {path}: the JSON list must hold strings only.")
    else:
        prompts = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise HeadRoomError(f"Prompts file {path} holds no prompts.")
    return prompts


def read_reuse_eval(path) -> dict:
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HeadRoomError(f"Reuse evaluation {path} does not exist (make it with `headroom reuse-eval`).") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HeadRoomError(f"Reuse evaluation {path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HeadRoomError(f"Reuse evaluation {path} is not a JSON object.")
    return data


def count_heads(unet) -> int:
    """Attention heads in a UNet (modules with a `heads` count and a query projection)."""
    return sum(int(m.heads) for _, m in unet.named_modules() if hasattr(m, "heads") and hasattr(m, "to_q"))


def run_report(base_pipe, fragment_pipe, inputs: ReportInputs, scorer: ClipScorer | None = None,
               clip_status: Availability | None = None, progress=None, token=None):
    """Returns (report dict, PairEvaluation). Reads the baseline first so a bad path fails before the work."""
    sink = as_sink(progress, token)
    baseline = load_report(inputs.baseline_path) if inputs.baseline_path else None
    reuse_eval = read_reuse_eval(inputs.reuse_eval_path) if inputs.reuse_eval_path else None
    heads_removed = inputs.heads_removed
    if heads_removed is None:
        heads_removed = count_heads(base_pipe.unet) - count_heads(fragment_pipe.unet)
    evaluation = evaluate_pair(base_pipe, fragment_pipe, inputs.config, scorer=scorer, clip_status=clip_status,
                               lpips_weights=inputs.lpips_weights, progress=sink)
    settings = {"prompts": list(inputs.config.prompts), "seeds": [int(s) for s in inputs.config.seeds],
                **inputs.config.settings.as_dict(), "latency_repeats": inputs.config.latency_repeats,
                "max_batch": inputs.config.max_batch}
    report = build_report(
        evaluation, model=inputs.model, fragment=inputs.fragment, settings=settings, device=inputs.device,
        profile_s=inputs.profile_s, extract_s=inputs.extract_s, profiling_overhead=inputs.profiling_overhead,
        heads_removed=heads_removed, reuse_eval=reuse_eval, reuse_source=inputs.reuse_eval_path)
    if baseline is not None:
        report["regression"] = {"baseline": str(inputs.baseline_path),
                                **compare_metrics(report["metrics"], baseline["metrics"], inputs.tolerances),
                                "environment_changes": environment_changes(report, baseline)}
    return report, evaluation


def html_path_for(json_path) -> Path:
    return Path(json_path).with_suffix(".html")


def write_report_files(report: dict, evaluation, json_path, html_path=None) -> tuple[Path, Path]:
    """Writes the JSON report and its HTML summary atomically; returns both paths."""
    json_path = Path(json_path)
    html_path = Path(html_path) if html_path else html_path_for(json_path)
    report.setdefault("files", {})
    report["files"] = {"json": str(json_path), "html": str(html_path)}
    write_json_atomic(json_path, report)
    write_text_atomic(html_path, render_html(report, evaluation.base_images, evaluation.fragment_images))
    return json_path, html_path
