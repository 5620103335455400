"""Profiling through the built-in pipeline: progress per step, prompt tokens, guidance, cancel, CLI end to end."""

from __future__ import annotations

import json

import pytest
import torch

from core.errors import CancelledError
from core.profiling import Profile, profile_model
from core.progress import CancelToken


def count_unet_calls(unet):
    calls = []
    return calls, unet.register_forward_pre_hook(lambda m, a: calls.append(1))


def test_profile_model_reports_every_step_and_records_prompt_tokens(builtin_pipe):
    events = []
    profile = profile_model(builtin_pipe, ["a red circle", "two blue squares"], seeds=[7], steps=2,
                            progress=events.append)
    steps = [e.done for e in events if e.done > 0]
    assert steps == [1, 2, 3, 4] and events[-1].total == 4
    assert events[-1].payload == {"seed": 7, "prompt_index": 1, "step": 1}
    mass, tokens = profile.token_mass_per_token(profile.cross_modules[0].name, prompt=0)
    assert tokens == ["<|startoftext|>", "a</w>", "red</w>", "circle</w>", "<|endoftext|>"]
    assert mass.shape == (profile.cross_modules[0].heads, 5)
    full, _ = profile.token_mass_per_token(profile.cross_modules[0].name, prompt=0, trim=False)
    torch.testing.assert_close(full.sum(-1), torch.ones(full.shape[0]), rtol=1e-5, atol=1e-5)
    # scalar token mass = mass on the content tokens (the words, not start / end / padding), averaged over
    # prompts: two different accumulators must agree
    name = profile.cross_modules[0].name
    per_prompt = []
    for index in range(2):
        tokens_mass, tokens = profile.token_mass_per_token(name, prompt=index)
        per_prompt.append(tokens_mass[:, 1:len(tokens) - 1].sum(-1))
    torch.testing.assert_close(profile.head_stat("token_mass")[name], torch.stack(per_prompt).mean(0),
                               rtol=1e-5, atol=1e-6)
    assert profile.meta["seeds"] == [7] and profile.meta["cfg"] is True
    assert profile.meta["scheduler"] == type(builtin_pipe.scheduler).__name__
    assert len(profile.modules) == sum(1 for n, _ in builtin_pipe.unet.named_modules() if n.endswith(("attn1", "attn2")))
    # the negative prompt is empty: no content tokens in the unconditional half
    assert all(float(v.abs().max()) == 0.0 for v in profile.head_stat("token_mass", half="uncond").values())
    assert all(float(v.min()) > 0.0 for v in profile.head_stat("token_mass").values())


def test_without_guidance_there_is_no_uncond_half(builtin_pipe):
    calls, handle = count_unet_calls(builtin_pipe.unet)
    try:
        profile = profile_model(builtin_pipe, ["a circle"], seeds=[0], steps=2, guidance=1.0)
    finally:
        handle.remove()
    assert len(calls) == 2 and profile.cfg is False
    with pytest.raises(ValueError, match="guidance"):
        profile.head_stat("energy", half="uncond")


def test_cancel_stops_within_one_step_and_restores_the_model(builtin_pipe):
    token = CancelToken()
    before = dict(builtin_pipe.unet.attn_processors)

    def cancel_at_step_two(event):
        if event.done == 2:
            token.cancel()

    calls, handle = count_unet_calls(builtin_pipe.unet)
    try:
        with pytest.raises(CancelledError):
            profile_model(builtin_pipe, ["a circle"], seeds=[0, 1], steps=10, progress=cancel_at_step_two,
                          token=token)
    finally:
        handle.remove()
    assert len(calls) == 3  # the step running when cancel was pressed finishes, no further one starts
    assert all(builtin_pipe.unet.attn_processors[k] is v for k, v in before.items())


def test_cli_profile_then_show(tmp_path, capsys):
    from core.cli.main import main

    out = tmp_path / "run.hrprof"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# shapes\na red circle\n\na green triangle\n")
    rc = main(["profile", "--model", "builtin:shapes", "--prompts-file", str(prompts), "--seeds", "3",
               "--steps", "2", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "4/4 steps" in err and "ETA" in err
    profile = Profile.load(out)
    assert profile.meta["prompts"] == ["a red circle", "a green triangle"] and profile.meta["seeds"] == [3]
    assert profile.meta["memory"]["samples"] >= 1 and profile.meta["memory"]["peak_rss_bytes"] > 0
    assert main(["profile", "show", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [r["module"] for r in shown["modules"]] == [m.name for m in profile.modules]
    assert shown["meta"]["steps"] == 2
    assert main(["profile", "show", str(out)]) == 0
    text = capsys.readouterr().out
    assert "seed-cv" in text and profile.modules[0].name in text


def test_cli_ctrl_c_leaves_no_file(tmp_path, monkeypatch, capsys):
    from core.cli.main import EXIT_CANCELLED, main
    from core.profiling.recorder import HeadProfiler

    original = HeadProfiler.end_step

    def interrupted(self, step):
        original(self, step)
        raise KeyboardInterrupt

    monkeypatch.setattr(HeadProfiler, "end_step", interrupted)
    out = tmp_path / "run.hrprof"
    rc = main(["profile", "--model", "builtin:shapes", "--prompt", "a circle", "--num-seeds", "1", "--steps", "3",
               "--out", str(out)])
    assert rc == EXIT_CANCELLED
    assert list(tmp_path.iterdir()) == []
    assert "Cancelled" in capsys.readouterr().err


def test_cli_errors_are_clear(tmp_path, capsys):
    from core.cli.main import main

    assert main(["profile", "--model", "builtin:shapes", "--steps", "2"]) == 2
    assert "No prompts" in capsys.readouterr().err
    bad = tmp_path / "bad.hrprof"
    bad.write_bytes(b"not a profile at all")
    assert main(["profile", "show", str(bad)]) == 2
    assert "not a readable profile" in capsys.readouterr().err


def test_seed_lists_and_ranges():
    from core.cli.profile_cmd import parse_seeds
    from core.errors import HeadRoomError

    assert parse_seeds("1,2,3") == [1, 2, 3]
    assert parse_seeds("1-3, 7") == [1, 2, 3, 7]
    for bad in ("a,b", "1,1", ""):
        with pytest.raises(HeadRoomError):
            parse_seeds(bad)
