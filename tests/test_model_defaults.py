"""Per-model recommended guidance (`headroom.json`): read, validated, used when the user gives none."""

import json

import pytest
from PIL import Image

from core.cli.main import main
from core.errors import HeadRoomError
from core.loading.model import LoadedModel
from core.loading.model_defaults import DEFAULT_GUIDANCE, guidance_for, read_model_defaults


def _model(details):
    return LoadedModel(pipe=None, family="sd15", name="m", model_hash="0" * 64, source="diffusers-folder",
                       details=details)


def test_reads_recommended_guidance(tmp_path):
    assert read_model_defaults(tmp_path) == {}
    (tmp_path / "headroom.json").write_text(json.dumps({"recommended_guidance": 4, "why": "measured"}))
    assert read_model_defaults(tmp_path) == {"recommended_guidance": 4.0}


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"recommended_guidance": "high"}), "must be a number"),
    (json.dumps({"recommended_guidance": 45}), "from 0 to 30"),
    (json.dumps({"recommended_guidance": True}), "must be a number"),
])
def test_malformed_defaults_are_named(tmp_path, content, message):
    (tmp_path / "headroom.json").write_text(content)
    with pytest.raises(HeadRoomError, match=message) as info:
        read_model_defaults(tmp_path)
    assert "headroom.json" in str(info.value)


def test_user_value_wins_then_model_then_default():
    assert guidance_for(_model({"recommended_guidance": 5.0}), 9.0) == 9.0
    assert guidance_for(_model({"recommended_guidance": 5.0}), None) == 5.0
    assert guidance_for(_model({}), None) == DEFAULT_GUIDANCE == 7.5


def test_builtin_model_recommends_its_measured_guidance():
    from core.loading import load_model

    assert load_model("builtin:shapes").details["recommended_guidance"] == 5.0


def test_cli_generate_uses_the_model_recommendation_unless_told(tmp_path):
    default, explicit = tmp_path / "default.png", tmp_path / "explicit.png"
    common = ["generate", "--prompt", "a red circle", "--seed", "1", "--steps", "2"]
    assert main(common + ["--out", str(default)]) == 0
    assert main(common + ["--guidance", "7.5", "--out", str(explicit)]) == 0
    assert "CFG scale: 5," in Image.open(default).text["parameters"]
    assert "CFG scale: 7.5," in Image.open(explicit).text["parameters"]
    assert Image.open(default).tobytes() != Image.open(explicit).tobytes()
