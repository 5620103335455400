"""`headroom extract` end to end on the built-in model, and `headroom generate --fragment` with its output."""

from __future__ import annotations

import json

import pytest
import torch

from core.cli.main import main


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    pass


@pytest.fixture(scope="module")
def profile_file(tmp_path_factory):
    from core.loading import load_model
    from core.profiling import profile_model

    loaded = load_model("builtin:shapes")
    profile = profile_model(loaded, ["a green triangle"], seeds=[3], steps=2)
    path = tmp_path_factory.mktemp("prof") / "run.hrprof"
    profile.save(path)
    return path


def test_extract_then_generate_with_fragment(profile_file, tmp_path, capsys):
    out = tmp_path / "frag"
    code = main(["extract", "--model", "builtin:shapes", "--device", "cpu", "--profile", str(profile_file),
                 "--percentile", "40", "--ffn", "0.25", "--precision", "fp16", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["pruning"]["threshold_params"]["percentile"] == 40
    assert manifest["pruning"]["method"] == "activation_energy_rank"
    assert manifest["compression"]["quantization"]["dtype"] == "fp16"
    assert manifest["pruning"]["ffn"]["ratio"] == 0.25
    assert manifest["generation_context"]["profiling"]["seeds"] == [3]
    assert "smaller" in printed and "attention_heads" in printed
    png = tmp_path / "img.png"
    code = main(["generate", "--model", "builtin:shapes", "--device", "cpu", "--fragment", str(out),
                 "--prompt", "a green triangle", "--steps", "2", "--out", str(png)])
    assert code == 0 and png.stat().st_size > 0


def test_extract_refuses_bad_arguments(profile_file, tmp_path, capsys):
    code = main(["extract", "--profile", str(profile_file), "--percentile", "150", "--out", str(tmp_path / "x")])
    assert code == 2 and "percentile" in capsys.readouterr().err
    code = main(["extract", "--profile", str(profile_file), "--retention", "0.5", "--ffn", "2",
                 "--out", str(tmp_path / "y")])
    assert code == 2 and "--ffn" in capsys.readouterr().err
    not_a_fragment = tmp_path / "busy"
    not_a_fragment.mkdir()
    (not_a_fragment / "notes.txt").write_text("mine")
    code = main(["extract", "--profile", str(profile_file), "--retention", "0.5", "--out", str(not_a_fragment)])
    assert code == 2 and "not a fragment folder" in capsys.readouterr().err
    assert (not_a_fragment / "notes.txt").read_text() == "mine"


def test_extract_preset_with_override(profile_file, tmp_path, capsys):
    out = tmp_path / "agg"
    code = main(["extract", "--profile", str(profile_file), "--device", "cpu", "--preset", "aggressive",
                 "--precision", "bf16", "--heal-steps", "3", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    # The preset heals (shortened here), in float32 before the precision tier; its score is taylor per module.
    assert manifest["healing"]["steps"] == 3 and manifest["healing"]["loss_last"] > 0
    assert manifest["pruning"]["method"] == "taylor" and manifest["pruning"]["normalize"] == "module"
    assert manifest["pruning"]["threshold_params"]["retention"] == 0.5
    assert manifest["pruning"]["ffn"]["ratio"] == 0.5
    assert manifest["compression"]["quantization"]["dtype"] == "bf16"  # the flag overrides the preset's int8
    assert manifest["pruning"]["heads_kept"] <= manifest["pruning"]["heads_total"] // 2 + 16


def test_bad_heal_steps_are_explained(profile_file, tmp_path, capsys):
    code = main(["extract", "--profile", str(profile_file), "--device", "cpu", "--preset", "default",
                 "--heal-steps", "-5", "--out", str(tmp_path / "h")])
    assert code == 2 and "--heal-steps" in capsys.readouterr().err and not (tmp_path / "h").exists()


def test_extract_with_taylor_score_and_dropping(profile_file, tmp_path, capsys):
    out = tmp_path / "taylor"
    code = main(["extract", "--profile", str(profile_file), "--device", "cpu", "--retention", "0.4",
                 "--score", "taylor", "--normalize", "global", "--drop-empty", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["pruning"]["method"] == "taylor" and manifest["pruning"]["normalize"] == "global"
    assert manifest["pruning"]["threshold_params"]["allow_drop_modules"] is True


def test_extract_estimate_matches_the_saved_fragment(profile_file, tmp_path, capsys):
    args = ["extract", "--profile", str(profile_file), "--device", "cpu", "--percentile", "45", "--ffn", "0.5",
            "--precision", "int8"]
    assert main(args + ["--estimate"]) == 0
    estimated = capsys.readouterr().out
    assert "nothing written" in estimated and not list(tmp_path.iterdir())
    out = tmp_path / "real"
    assert main(args + ["--out", str(out)]) == 0
    saved = capsys.readouterr().out
    size_line = [line for line in saved.splitlines() if line.strip().startswith("size")][0]
    assert size_line in estimated  # same MB before/after and percentage, to the printed precision
    assert main(["extract", "--profile", str(profile_file), "--percentile", "45"]) == 2
    assert "--out" in capsys.readouterr().err
