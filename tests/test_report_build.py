"""The report: every checklist metric present, missing ones explained, arithmetic, table, HTML, manifest."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from core.quality.evaluate import PairEvaluation, quality_of_images
from core.quality.metrics import Availability, lpips_availability
from core.report.build import CHECKLIST, METRICS, build_report
from core.report.html import render_html
from core.report.manifest_fields import (
    performance_from_report,
    quality_eval_from_report,
    write_manifest_sections_json,
)
from core.report.table import format_report

MB = 1024 * 1024


def _images(seed, n=2):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(n)]


def _perf(latency_ms, working_mb, weights_mb, best_ipm, seq_ipm):
    return {
        "latency_ms": latency_ms,
        "latency": {"median_ms": latency_ms},
        "peak_memory": {"method": "rss_sampler", "working_mb": working_mb},
        "weights_bytes": {"unet": int(weights_mb * MB), "total": int(weights_mb * MB)},
        "throughput": {"points": [{"batch_size": 1, "images_per_min": seq_ipm},
                                  {"batch_size": 2, "images_per_min": best_ipm}],
                       "best_batch_size": 2, "best_images_per_min": best_ipm,
                       "sequential_images_per_min": seq_ipm},
        "batch_speedup": best_ipm / seq_ipm,
    }


def _evaluation(with_perf=True):
    base, fragment = _images(1), _images(1)
    fragment[1] = _images(2)[0]  # one sample differs
    samples, clip, quality = quality_of_images(["a red circle", "a blue square"], base, fragment, None,
                                               Availability(False, "no CLIP in this test"), [0, 1])
    perf = {"base": _perf(1000.0, 400.0, 300.0, 180.0, 100.0),
            "fragment": _perf(800.0, 280.0, 200.0, 200.0, 100.0)} if with_perf else {}
    return PairEvaluation(samples, base, fragment, clip, lpips_availability(None).as_dict(), quality, perf)


def _report(**kw):
    args = {"model": {"name": "builtin:shapes", "hash": "abc"}, "fragment": {"path": "frag", "manifest": {}},
            "settings": {"prompts": ["a red circle", "a blue square"], "seeds": [0], "steps": 2}}
    args.update(kw)
    return build_report(_evaluation(args.pop("with_perf", True)), **args)


def test_every_checklist_metric_is_in_the_report_and_missing_ones_say_why():
    report = _report()
    assert report["schema"] == "headroom.report" and report["report_schema_version"] == 1
    assert set(report["metrics"]) == set(METRICS)
    # The roadmap's 12 checklist rows, in order, then what is measured beyond it.
    assert [row["metric"] for row in report["checklist"][:12]] == [name for _, name, _ in CHECKLIST]
    assert len(CHECKLIST) == 12
    for key, value in report["metrics"].items():
        if value is None:
            assert report["metric_notes"].get(key), f"{key} is missing without a reason"
    rows = {row["metric"]: row for row in report["checklist"]}
    assert rows["CLIP text-image similarity"]["status"] == "unavailable"
    assert "no CLIP in this test" in rows["CLIP text-image similarity"]["note"]
    assert rows["LPIPS"]["status"] == "unavailable"
    assert rows["Paraphrase pass rate"]["status"] == "not measured"
    assert rows["SSIM"]["status"] == "measured"
    json.dumps(report)  # serialisable as it is


def test_derived_numbers():
    report = _report(profile_s=30.0, extract_s=10.0, heads_removed=5)
    m = report["metrics"]
    assert m["memory.reduction"] == pytest.approx(1 - 280 / 400)
    assert m["memory.weights_reduction"] == pytest.approx(1 - 200 / 300)
    assert m["performance.batch_speedup"] == pytest.approx(2.0)
    assert m["performance.latency_ratio"] == pytest.approx(0.8)
    assert m["economics.break_even_variants"] == pytest.approx(40.0 / 0.2)
    assert m["quality.ssim_mean"] < 1.0 and report["samples"][0]["ssim"] == pytest.approx(1.0)
    assert report["samples"][0]["phash_distance"] == 0
    verdicts = {h["id"]: h for h in report["hypotheses"]}
    assert verdicts["H1"]["verdict"] == "NOT MEASURED"  # CLIP unavailable
    assert verdicts["H2"]["verdict"] == "NOT MEASURED"  # memory measured, quality delta not
    assert verdicts["H4"]["verdict"] == "PASS" and verdicts["H4"]["measured"] == pytest.approx(2.0)
    assert verdicts["H5"]["verdict"] == "FAIL" and verdicts["H5"]["measured"] == pytest.approx(200.0)


def test_times_come_from_the_manifest_and_reuse_from_a_reuse_eval():
    manifest = {"generation_context": {"profiling": {"timings": {"profile_s": 2.0}}}, "extract_s": 1.0}
    report = _report(fragment={"path": "frag", "manifest": manifest},
                     reuse_eval={"summary": {"paraphrase_pass_rate": 75, "fragment_hit_rate": 0.5}},
                     reuse_source="reuse.json")
    m = report["metrics"]
    assert m["economics.break_even_variants"] == pytest.approx(3.0 / 0.2)
    assert m["reuse.paraphrase_pass_rate"] == pytest.approx(0.75)
    assert {h["id"]: h["verdict"] for h in report["hypotheses"]}["H3"] == "PASS"
    assert "manifest" not in report["fragment"]


def test_without_performance_every_performance_metric_is_not_measured():
    report = _report(with_perf=False)
    for key in METRICS:
        if key.startswith(("performance.", "memory.")):
            assert report["metrics"][key] is None
    assert {h["id"]: h["verdict"] for h in report["hypotheses"]}["H4"] == "NOT MEASURED"


def test_table_lists_metrics_and_verdicts():
    text = format_report(_report(heads_removed=3))
    assert "SSIM base vs fragment" in text and "peak memory reduction" in text
    assert re.search(r"H4\s+PASS\s+2\.00x", text)
    assert re.search(r"H1\s+NOT MEASURED", text)


def test_html_is_self_contained_with_images_and_plots():
    evaluation = _evaluation()
    report = _report()
    html = render_html(report, evaluation.base_images, evaluation.fragment_images)
    assert html.startswith("<!DOCTYPE html>")
    assert html.count("data:image/png;base64,") == 3 * len(evaluation.base_images)  # base|fragment|difference
    assert html.count("<svg") >= 2 and "<polyline" in html
    assert not re.search(r"(src|href)=['\"]https?:", html)
    for h in ("H1", "H2", "H3", "H4", "H5"):
        assert f"<td>{h}</td>" in html
    assert "<td>unet</td><td>300.00</td><td>200.00</td>" in html  # weights per component, MB


def test_manifest_sections_from_the_report(tmp_path):
    report = _report()
    quality, perf = quality_eval_from_report(report, "reports/x.json"), performance_from_report(report)
    assert quality["samples"] == 2 and quality["ssim_mean"] == report["metrics"]["quality.ssim_mean"]
    assert quality["clip_delta_mean"] is None and "no CLIP" in quality["clip_unavailable_reason"]
    assert perf["base_latency_ms"] == 1000.0 and perf["fragment_peak_vram_mb"] == 280.0
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"schema_version": 1, "pruning": {"method": "x"}}))
    write_manifest_sections_json(manifest, report, "reports/x.json")
    data = json.loads(manifest.read_text())
    assert data["pruning"] == {"method": "x"}  # the rest is kept
    assert data["quality_eval"]["report_path"] == "reports/x.json"
    assert data["performance"]["fragment_latency_ms"] == 800.0
    assert not list(tmp_path.glob("*.partial"))


def test_a_reuse_evaluation_of_another_model_does_not_count():
    reuse = {"model": {"hash": "0" * 64}, "paraphrase_pass_rate": 0.9, "lookup_hit_rate": 0.8,
             "paraphrases_tested": 10}
    same = _report(model={"name": "m", "hash": "0" * 64}, reuse_eval=reuse, reuse_source="r.json")
    assert same["metrics"]["reuse.paraphrase_pass_rate"] == 0.9
    assert same["metrics"]["reuse.fragment_hit_rate"] == 0.8  # reuse-eval's lookup hit rate
    assert "10 paraphrases" in same["metric_notes"]["reuse.paraphrase_pass_rate"]
    other = _report(model={"name": "m", "hash": "1" * 64}, reuse_eval=reuse, reuse_source="r.json")
    assert other["metrics"]["reuse.paraphrase_pass_rate"] is None
    assert "not this model" in other["metric_notes"]["reuse.paraphrase_pass_rate"]
    assert {h["id"]: h["verdict"] for h in other["hypotheses"]}["H3"] == "NOT MEASURED"
