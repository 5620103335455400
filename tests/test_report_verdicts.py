"""H1-H5 verdicts at the roadmap's thresholds, and break-even arithmetic."""

from __future__ import annotations

import pytest

from core.quality.perf import batch_speedup, break_even
from core.report.verdicts import (
    FAIL,
    NOT_MEASURED,
    PASS,
    all_verdicts,
    verdict_h1,
    verdict_h2,
    verdict_h3,
    verdict_h4,
    verdict_h5,
)


def test_nothing_measured_means_nothing_passes():
    verdicts = all_verdicts()
    assert [v["id"] for v in verdicts] == ["H1", "H2", "H3", "H4", "H5"]
    assert all(v["verdict"] == NOT_MEASURED and v["measured"] is None for v in verdicts)
    assert all(v["reason"] for v in verdicts)


def test_h1_threshold_and_needs_removed_heads():
    assert verdict_h1(0.02, 12)["verdict"] == PASS
    assert verdict_h1(-0.01, 12)["verdict"] == PASS  # fragment scores better than base
    assert verdict_h1(0.0201, 12)["verdict"] == FAIL
    # A fragment that removes nothing says nothing about a prunable subset, however good its delta.
    assert verdict_h1(0.0, 0)["verdict"] == NOT_MEASURED
    assert verdict_h1(0.0, None)["verdict"] == NOT_MEASURED
    assert verdict_h1(None, 12)["verdict"] == NOT_MEASURED


def test_h2_needs_both_memory_and_quality():
    assert verdict_h2(0.25, 0.049)["verdict"] == PASS
    assert verdict_h2(0.24, 0.0)["verdict"] == FAIL
    assert verdict_h2(0.5, 0.05)["verdict"] == FAIL
    assert verdict_h2(0.5, None)["verdict"] == NOT_MEASURED
    assert verdict_h2(None, 0.0)["verdict"] == NOT_MEASURED
    assert verdict_h2(0.41, 0.01)["stretch_40pct"] is True
    assert verdict_h2(0.30, 0.01)["stretch_40pct"] is False


def test_h3_pass_rate_levels():
    assert verdict_h3(0.7)["verdict"] == PASS and verdict_h3(0.7)["level"] == "initial"
    assert verdict_h3(0.85)["level"] == "stable"
    assert verdict_h3(0.69)["verdict"] == FAIL
    assert verdict_h3(None)["verdict"] == NOT_MEASURED


def test_h4_batch_speedup():
    assert verdict_h4(1.7, 4)["verdict"] == PASS
    assert verdict_h4(1.69, 4)["verdict"] == FAIL
    assert verdict_h4(None)["verdict"] == NOT_MEASURED
    assert batch_speedup(340.0, 200.0) == pytest.approx(1.7)
    assert batch_speedup(None, 200.0) is None


def test_h5_break_even_including_never():
    assert verdict_h5(10)["verdict"] == PASS
    assert verdict_h5(10.5)["verdict"] == FAIL
    assert verdict_h5("never")["verdict"] == FAIL
    assert verdict_h5(None)["verdict"] == NOT_MEASURED
    assert verdict_h5(True)["verdict"] == NOT_MEASURED  # a bool is not a measurement


def test_break_even_arithmetic():
    # 60 s profiling + 40 s extraction, 500 ms saved per image -> 200 images to pay back.
    result = break_even(60.0, 40.0, 1500.0, 1000.0)
    assert result.variants == pytest.approx(200.0) and not result.never
    assert break_even(6.0, 3.0, 2000.0, 1100.0).variants == pytest.approx(10.0)


def test_break_even_is_never_when_the_fragment_is_not_faster():
    assert break_even(60.0, 40.0, 1000.0, 1000.0).never
    slower = break_even(60.0, 40.0, 1000.0, 1200.0)
    assert slower.never and slower.as_dict()["variants"] == "never"
    assert verdict_h5(slower.as_dict()["variants"])["verdict"] == FAIL


def test_break_even_is_not_measured_without_its_inputs():
    assert break_even(None, 40.0, 1500.0, 1000.0) is None
    assert break_even(60.0, 40.0, None, 1000.0) is None


def test_quality_that_cannot_judge_never_passes_h1_or_h2():
    why = "the model has untrained stand-in weights: its images match no prompt"
    assert verdict_h1(-0.05, 24, 4, quality_invalid=why)["verdict"] == NOT_MEASURED
    h2 = verdict_h2(0.5, 0.0, quality_invalid=why)
    assert h2["verdict"] == NOT_MEASURED and why in h2["reason"]
    verdicts = {v["id"]: v for v in all_verdicts(clip_delta_rel=0.0, heads_removed=5, memory_reduction=0.3,
                                                  quality_delta=0.0, batch_speedup=2.0, quality_invalid=why)}
    assert verdicts["H1"]["verdict"] == verdicts["H2"]["verdict"] == NOT_MEASURED
    assert verdicts["H4"]["verdict"] == PASS  # performance does not depend on what the images show


def test_relative_clip_delta_needs_base_images_that_match_their_prompts():
    from core.quality.evaluate import summarize_clip
    from core.quality.metrics import Availability

    matching = summarize_clip([30.0, 34.0], [31.0, 31.0], Availability(True, ""), None)
    assert matching["delta_rel"] == pytest.approx(1.0 / 32.0)
    noise = summarize_clip([-17.0, -16.0], [-15.0, -16.0], Availability(True, ""), None)
    assert noise["delta_mean"] == pytest.approx(-1.0) and noise["delta_rel"] is None
    assert "do not match their prompts" in noise["delta_rel_reason"]
