"""`headroom batch` from the command line: arguments, files written, exit codes, clear errors."""

from __future__ import annotations

import json

import pytest

from core.cli.main import main


@pytest.fixture
def builtin_loaded(builtin_pipe, monkeypatch):
    """The session's built-in model handed to the CLI instead of loading it a second time."""
    from core.loading.model import LoadedModel

    loaded = LoadedModel(builtin_pipe, "builtin", "builtin:shapes", "f" * 64, "builtin")
    calls = []

    def load_model(spec, device="cpu", dtype=None, **_):
        calls.append(spec)
        assert spec == "builtin:shapes"
        return loaded

    monkeypatch.setattr("core.loading.load_model", load_model)
    return calls


def test_batch_command_writes_images_and_summary(builtin_loaded, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle\na blue square\n")
    out = tmp_path / "out"
    code = main(["batch", "--model", "builtin:shapes", "--prompts-file", str(prompts), "--seeds", "1-2",
                 "--batch-size", "2", "--steps", "2", "--out", str(out)])
    assert code == 0 and builtin_loaded == ["builtin:shapes"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["images_done"] == 4
    assert sorted(p.name for p in out.glob("*.png")) == sorted(r["file"] for r in summary["images"])
    err = capsys.readouterr().err
    assert "4/4 images" in err and "4 images in" in err


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "zero"], "--batch-size must be 'auto' or a whole number"),
    (["--seeds", "9-1"], "runs backwards"),
    (["--prompts-file", "/no/such/file.txt"], "No prompts file"),
])
def test_batch_command_user_errors_exit_2_before_loading(builtin_loaded, tmp_path, capsys, args, message):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle\n")
    base = ["batch", "--prompts-file", str(prompts), "--out", str(tmp_path / "o")]
    assert main(base + args) == 2
    assert message in capsys.readouterr().err
    assert builtin_loaded == []  # nothing heavy happened
