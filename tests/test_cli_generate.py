"""`headroom generate` and `headroom models inspect` end to end on the built-in model."""

import json

from PIL import Image

from core.cli.main import main


def test_generate_writes_png_with_parameters(tmp_path):
    out = tmp_path / "img.png"
    assert main(["generate", "--prompt", "a blue square on the right", "--seed", "7", "--steps", "3", "--out", str(out)]) == 0
    image = Image.open(out)
    assert image.size == (64, 64)
    text = image.text["parameters"]
    lines = text.splitlines()
    assert lines[0] == "a blue square on the right"
    assert "Steps: 3" in lines[-1] and "Seed: 7" in lines[-1] and "Size: 64x64" in lines[-1]
    assert "Model: builtin:shapes" in lines[-1] and "Model hash: " in lines[-1]
    again = tmp_path / "again.png"
    main(["generate", "--prompt", "a blue square on the right", "--seed", "7", "--steps", "3", "--out", str(again)])
    assert Image.open(again).tobytes() == image.tobytes()


def test_generate_rejects_bad_arguments(tmp_path, capsys):
    assert main(["generate", "--prompt", "x", "--out", str(tmp_path / "x.jpg")]) == 2
    assert ".png" in capsys.readouterr().err
    assert main(["generate", "--prompt", "x", "--size", "65x64", "--steps", "1", "--out", str(tmp_path / "x.png")]) == 2
    assert "multiples of 8" in capsys.readouterr().err


def test_models_inspect_json(capsys):
    assert main(["models", "inspect", "builtin:shapes", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["family"] == "builtin"
    assert data["attention_modules"] == len(data["attention"]) > 0
    assert data["total_heads"] == sum(a["heads"] for a in data["attention"])
    kinds = {a["kind"] for a in data["attention"]}
    assert kinds == {"self", "cross"}
    assert data["total_parameters"] == sum(data["components"].values())
