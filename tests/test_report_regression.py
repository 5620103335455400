"""The regression gate flags metrics that got worse past their tolerance, and only those."""

from __future__ import annotations

import json

import pytest

from core.errors import HeadRoomError
from core.report.regression import compare_metrics, load_report, parse_tolerance_overrides

BASE = {
    "quality.ssim_mean": 0.95,
    "quality.clip_delta_rel": 0.01,
    "performance.fragment_latency_ms": 1000.0,
    "memory.fragment_peak_mb": 500.0,
    "economics.break_even_variants": 8.0,
    "reuse.paraphrase_pass_rate": None,
}


def _names(result, kind="drifted"):
    return sorted(d["metric"] for d in result[kind])


def test_identical_metrics_do_not_drift():
    result = compare_metrics(dict(BASE), BASE)
    assert result["drifted"] == [] and result["improved"] == []
    assert result["compared"] == 5


def test_a_metric_worse_than_its_tolerance_drifts():
    current = dict(BASE, **{"performance.fragment_latency_ms": 1300.0, "quality.ssim_mean": 0.90})
    result = compare_metrics(current, BASE)
    assert _names(result) == ["performance.fragment_latency_ms", "quality.ssim_mean"]
    latency = next(d for d in result["drifted"] if d["metric"] == "performance.fragment_latency_ms")
    assert latency["change"] == pytest.approx(300.0) and latency["allowed"] == pytest.approx(250.0)


def test_changes_within_tolerance_or_for_the_better_do_not_fail():
    current = dict(BASE, **{"performance.fragment_latency_ms": 1200.0, "memory.fragment_peak_mb": 300.0})
    result = compare_metrics(current, BASE)
    assert result["drifted"] == []
    assert _names(result, "improved") == ["memory.fragment_peak_mb"]


def test_a_metric_no_longer_measured_drifts_and_never_is_worse_than_a_number():
    current = dict(BASE, **{"quality.clip_delta_rel": None, "economics.break_even_variants": "never"})
    result = compare_metrics(current, BASE)
    assert _names(result) == ["economics.break_even_variants", "quality.clip_delta_rel"]


def test_tolerance_overrides():
    tol = parse_tolerance_overrides(["performance.fragment_latency_ms=50%", "quality.ssim_mean=0.1"])
    current = dict(BASE, **{"performance.fragment_latency_ms": 1300.0, "quality.ssim_mean": 0.90})
    assert compare_metrics(current, BASE, tol)["drifted"] == []
    with pytest.raises(HeadRoomError, match="METRIC=NUMBER"):
        parse_tolerance_overrides(["no_such_metric=1"])
    with pytest.raises(HeadRoomError, match="not a number"):
        parse_tolerance_overrides(["quality.ssim_mean=abc"])


def test_baseline_must_be_a_headroom_report(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(HeadRoomError, match="not a HeadRoom report"):
        load_report(bad)
    with pytest.raises(HeadRoomError, match="does not exist"):
        load_report(tmp_path / "missing.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(HeadRoomError, match="not readable JSON"):
        load_report(tmp_path / "junk.json")


def test_environment_changes_are_listed():
    from core.report.regression import environment_changes

    a = {"environment": {"device": "cpu", "torch": "2.14.1", "cpu_threads": 2}}
    b = {"environment": {"device": "cuda:0", "torch": "2.14.1", "cpu_threads": 2}}
    assert environment_changes(a, a) == []
    assert environment_changes(b, a) == ["device: cpu -> cuda:0"]

    c = {"environment": a["environment"], "model": {"hash": "a" * 64}}
    d = {"environment": a["environment"], "model": {"hash": "b" * 64}}
    assert environment_changes(d, c) == ["base model: aaaaaaaaaaaa... -> bbbbbbbbbbbb..."]


def test_prompts_files(tmp_path):
    from core.report.run import read_prompts_file

    lines = tmp_path / "prompts.txt"
    lines.write_text("# shapes\na red circle\n\n  a blue square on the left  \n")
    assert read_prompts_file(lines) == ["a red circle", "a blue square on the left"]
    as_json = tmp_path / "prompts.json"
    as_json.write_text('["a red circle", "a green triangle"]')
    assert read_prompts_file(as_json) == ["a red circle", "a green triangle"]
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n")
    with pytest.raises(HeadRoomError, match="holds no prompts"):
        read_prompts_file(empty)
    with pytest.raises(HeadRoomError, match="does not exist"):
        read_prompts_file(tmp_path / "missing.txt")
    bad = tmp_path / "bad.json"
    bad.write_text('["a red circle", 3]')
    with pytest.raises(HeadRoomError, match="strings only"):
        read_prompts_file(bad)
