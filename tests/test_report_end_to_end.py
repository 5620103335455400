"""`headroom report` end to end on the built-in model with a small real fragment: profiled (2 steps),
extracted (30th percentile of heads removed) and saved through core.profiling / core.fragments, then
measured through the CLI, which fills the fragment manifest's quality_eval / performance sections."""

from __future__ import annotations

import json

import pytest
from quality_clip_helpers import TINY_CLIP_NAME, write_tiny_clip

from core.cli.main import main


@pytest.fixture(scope="module")
def fragment_template(tmp_path_factory):
    import torch

    from core.fragments import extract_fragment
    from core.loading import load_model
    from core.profiling import profile_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    loaded = load_model("builtin:shapes")
    profile = profile_model(loaded, ["a red circle", "a blue square"], seeds=[0], steps=2)
    out = tmp_path_factory.mktemp("fragment") / "fragment"
    manifest = extract_fragment(loaded, profile, out)
    torch.set_num_threads(threads)
    assert manifest.pruning.heads_total > manifest.pruning.heads_kept
    return out, loaded.model_hash, loaded.details.get("trained")


@pytest.fixture()
def setup(tmp_path, fragment_template):
    import shutil

    import torch

    # Two shared CPU cores: two torch threads fighting other work are many times slower than one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    template, model_hash, trained = fragment_template
    fragment_dir = tmp_path / "fragment"
    shutil.copytree(template, fragment_dir)
    # What `headroom reuse-eval --out` writes (the fields the report reads), for this model.
    (tmp_path / "reuse.json").write_text(json.dumps(
        {"model": {"hash": model_hash}, "paraphrases_tested": 6, "paraphrase_pass_rate": 5 / 6,
         "lookup_hit_rate": 4 / 6}))
    config, weights = write_tiny_clip(tmp_path / "clip")
    common = ["report", "--model", "builtin:shapes", "--fragment", str(fragment_dir),
              "--prompt", "a red circle", "--prompt", "a blue square", "--seeds", "0", "1", "--steps", "2",
              "--clip-weights", str(weights), "--clip-model", TINY_CLIP_NAME, "--clip-config", str(config),
              "--reuse-eval", str(tmp_path / "reuse.json")]
    yield tmp_path, fragment_dir, common, trained
    torch.set_num_threads(threads)


def test_report_end_to_end_and_regression_gate(setup, capsys):
    tmp_path, fragment_dir, common, trained = setup
    first = tmp_path / "reports" / "first.json"
    assert main(common + ["--no-perf", "--out", str(first)]) == 0
    report = json.loads(first.read_text())
    m = report["metrics"]
    assert report["quality"]["samples"] == 4 and len(report["samples"]) == 4
    assert 0.0 < m["quality.ssim_mean"] < 1.0  # the pruned fragment draws something different
    assert m["quality.clip_base_mean"] is not None and m["quality.clip_delta_rel"] is not None
    assert report["fragment"]["heads_removed"] > 0
    # Both prompts are in the shapes world's words, so the scene checker judged every image.
    assert report["quality"]["checker_samples"] == 4
    assert 0.0 <= m["quality.checker_accuracy_fragment"] <= 1.0
    verdicts = {h["id"]: h for h in report["hypotheses"]}
    if trained is False:  # random stand-in weights draw noise: quality cannot judge a hypothesis
        assert verdicts["H1"]["verdict"] == "NOT MEASURED" and "stand-in" in verdicts["H1"]["reason"]
    else:
        assert verdicts["H1"]["verdict"] in ("PASS", "FAIL")
        assert verdicts["H1"]["measured"] == m["quality.clip_delta_rel"]
    assert verdicts["H3"]["verdict"] == "PASS" and verdicts["H3"]["measured"] == pytest.approx(5 / 6)
    assert m["reuse.fragment_hit_rate"] == pytest.approx(4 / 6)
    assert verdicts["H4"]["verdict"] == "NOT MEASURED"
    html = (tmp_path / "reports" / "first.html").read_text()
    assert html.count("data:image/png;base64,") == 12
    manifest = json.loads((fragment_dir / "manifest.json").read_text())
    assert manifest["quality_eval"]["samples"] == 4
    assert manifest["quality_eval"]["checker_accuracy_base"] == m["quality.checker_accuracy_base"]
    assert manifest["quality_eval"]["ssim_mean"] == pytest.approx(m["quality.ssim_mean"])
    assert manifest["quality_eval"]["report_path"] == str(first)
    assert manifest["pruning"]["heads_total"] - manifest["pruning"]["heads_kept"] == report["fragment"]["heads_removed"]
    out = capsys.readouterr().out
    assert "SSIM base vs fragment" in out and "H5" in out
    assert ("untrained stand-in" in out) == (trained is False)

    # With performance, against the first report: same prompts and seeds give the same quality numbers.
    second = tmp_path / "reports" / "second.json"
    assert main(common + ["--max-batch", "2", "--latency-repeats", "1", "--baseline", str(first),
                          "--out", str(second)]) == 0
    report2 = json.loads(second.read_text())
    m2 = report2["metrics"]
    assert m2["quality.ssim_mean"] == pytest.approx(m["quality.ssim_mean"], abs=1e-6)
    assert report2["regression"]["drifted"] == [] and report2["regression"]["compared"] >= 4
    assert m2["memory.fragment_weights_mb"] < m2["memory.base_weights_mb"]  # heads were really removed
    assert m2["memory.weights_reduction"] > 0
    assert m2["performance.base_latency_ms"] > 0 and m2["performance.fragment_images_per_min"] > 0
    points = report2["performance"]["fragment"]["throughput"]["points"]
    assert [p["batch_size"] for p in points] == [1, 2]
    # Profile and extract times come from the manifest the extraction wrote.
    assert report2["economics"]["profile_s"] > 0 and report2["economics"]["extract_s"] > 0
    assert report2["economics"]["break_even"] is not None
    overhead = report2["performance"]["profiling_overhead"]
    assert overhead["plain_s"] > 0 and overhead["profiled_s"] > 0
    assert m2["performance.profiling_overhead"] == pytest.approx(overhead["profiled_s"] / overhead["plain_s"] - 1)
    assert manifest != json.loads((fragment_dir / "manifest.json").read_text())  # performance filled in
    manifest2 = json.loads((fragment_dir / "manifest.json").read_text())
    assert manifest2["performance"]["base_latency_ms"] == pytest.approx(m2["performance.base_latency_ms"])
    assert manifest2["performance"]["extraction_seconds"] == report2["economics"]["extract_s"]
    # The manifest still loads through the fragment API after the update.
    from core.fragments import read_manifest

    assert read_manifest(fragment_dir).quality_eval.samples == 4

    # A baseline that was better than now: the gate lists the drifted metrics and exits non-zero.
    better = dict(report)
    better["metrics"] = dict(m, **{"quality.phash_distance_mean": m["quality.phash_distance_mean"] - 5,
                                   "quality.ssim_mean": m["quality.ssim_mean"] + 0.2})
    baseline = tmp_path / "better.json"
    baseline.write_text(json.dumps(better))
    capsys.readouterr()
    third = tmp_path / "reports" / "third.json"
    assert main(common + ["--no-perf", "--baseline", str(baseline), "--out", str(third)]) == 1
    err = capsys.readouterr().err
    assert "Regression gate FAILED" in err
    assert "quality.phash_distance_mean" in err and "quality.ssim_mean" in err
    drifted = {d["metric"] for d in json.loads(third.read_text())["regression"]["drifted"]}
    assert drifted == {"quality.phash_distance_mean", "quality.ssim_mean"}


def test_bad_inputs_are_user_errors(setup, capsys):
    tmp_path, _fragment_dir, common, _ = setup
    assert main(common + ["--no-perf", "--out", str(tmp_path / "r.txt")]) == 2
    assert "ending in .json" in capsys.readouterr().err
    assert main(common + ["--no-perf", "--baseline", str(tmp_path / "nope.json"), "--out",
                          str(tmp_path / "r.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
