"""Batch runs on the built-in model: files, PNG parameters, summary, determinism, OOM backoff, cancel, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.batch import BatchSettings, build_jobs, run_batch
from core.batch.pngmeta import read_parameters
from core.batch.runner import generate_batch
from core.batch.sizing import OutOfMemoryError
from core.errors import CancelledError
from core.progress import CancelToken

STEPS = 2


def _settings(**kw):
    kw.setdefault("steps", STEPS)
    kw.setdefault("model_name", "builtin:shapes")
    kw.setdefault("model_hash", "abcdef0123456789")
    return BatchSettings(**kw)


def _pixels(path):
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def test_batch_writes_images_parameters_and_summary(builtin_pipe, tmp_path):
    jobs = build_jobs(["a red circle", "a blue square"], [3, 4])
    events = []
    summary = run_batch(builtin_pipe, jobs, tmp_path, _settings(batch_size=3), progress=events.append)
    files = sorted(p.name for p in tmp_path.glob("*.png"))
    assert files == sorted(j.filename for j in jobs)
    params = read_parameters(tmp_path / jobs[2].filename)
    assert params.splitlines()[0] == "a blue square"
    assert "Steps: 2, Sampler: DDIM, CFG scale: 7.5, Seed: 3, Size: 64x64, Model hash: abcdef0123, Model: builtin:shapes" in params
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["status"] == "finished" and data["images_done"] == 4 == data["images_total"]
    assert [r["batch_size"] for r in data["images"]] == [3, 3, 3, 1]
    assert {(r["prompt"], r["seed"]) for r in data["images"]} == {(j.prompt, j.seed) for j in jobs}
    # progress: images done of total, rising, ending at the total, with an ETA in the message
    assert [e.done for e in events] == [0, 3, 4] and all(e.total == 4 for e in events)
    assert "ETA" in events[1].message and events[1].payload["batch_size"] == 3
    assert summary.images_per_minute() > 0


def test_an_image_does_not_depend_on_its_batch(builtin_pipe, tmp_path):
    together = run_batch(builtin_pipe, build_jobs(["a green triangle", "a red circle"], [11]), tmp_path / "a",
                         _settings(batch_size=2))
    alone = run_batch(builtin_pipe, build_jobs(["a red circle"], [11]), tmp_path / "b", _settings(batch_size=1))
    a = _pixels(tmp_path / "a" / together.images[1].file)
    b = _pixels(tmp_path / "b" / alone.images[0].file)
    assert np.abs(a - b).max() <= 2
    other_seed = run_batch(builtin_pipe, build_jobs(["a red circle"], [12]), tmp_path / "c", _settings(batch_size=1))
    c = _pixels(tmp_path / "c" / other_seed.images[0].file)
    assert np.abs(a - c).mean() > 1.0  # the seed matters: the check above is not vacuous


def _oom_above(limit, exc_factory):
    calls = []

    def generate(pipe, jobs, settings, width, height, check=None):
        calls.append(len(jobs))
        if len(jobs) > limit:
            raise exc_factory()
        return generate_batch(pipe, jobs, settings, width, height, check)

    return generate, calls


def test_out_of_memory_backs_off_and_finishes(builtin_pipe, tmp_path):
    import torch

    generate, calls = _oom_above(1, lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8 GiB"))
    jobs = build_jobs(["a yellow circle"], [1, 2, 3])
    summary = run_batch(builtin_pipe, jobs, tmp_path, _settings(batch_size=4), generate=generate)
    assert calls == [3, 1, 1, 1]  # 3 left (of 4 asked) failed, then 1 at a time (the ceiling is below 3)
    assert summary.status == "finished" and summary.done == 3
    assert summary.sizing["backoffs_at"] == [3]
    assert len(list(tmp_path.glob("*.png"))) == 3


def test_out_of_memory_at_one_image_fails_clearly_and_records_it(builtin_pipe, tmp_path):
    generate, _ = _oom_above(0, lambda: RuntimeError("CUDA out of memory"))
    with pytest.raises(OutOfMemoryError, match="single image"):
        run_batch(builtin_pipe, build_jobs(["x"], [1, 2]), tmp_path, _settings(batch_size=2), generate=generate)
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["status"] == "failed" and "single image" in data["error"]


def test_cancel_keeps_finished_images_and_a_rerun_continues(builtin_pipe, tmp_path):
    jobs = build_jobs(["a purple square"], [1, 2, 3, 4])
    token = CancelToken()

    def cancel_after_first_batch(event):
        if event.done >= 2:
            token.cancel()

    with pytest.raises(CancelledError, match="Cancelled after 2 of 4") as info:
        run_batch(builtin_pipe, jobs, tmp_path, _settings(batch_size=2), progress=cancel_after_first_batch,
                  token=token)
    assert info.value.summary.status == "cancelled"
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [jobs[0].filename, jobs[1].filename]
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "cancelled"
    before = (tmp_path / jobs[0].filename).stat().st_mtime_ns

    resumed = run_batch(builtin_pipe, jobs, tmp_path, _settings(batch_size=2))
    assert resumed.status == "finished" and resumed.done == 4 and resumed.generated == 2
    assert (tmp_path / jobs[0].filename).stat().st_mtime_ns == before  # kept, not redone
    # a changed setting makes the old images stale: they are generated again
    redone = run_batch(builtin_pipe, jobs[:1], tmp_path, _settings(batch_size=1, guidance=3.0))
    assert redone.generated == 1


def test_cancel_inside_a_step_leaves_no_partial_batch(builtin_pipe, tmp_path):
    token = CancelToken()
    steps_seen = []

    def generate(pipe, jobs, settings, width, height, check=None):
        def check_and_cancel():
            steps_seen.append(1)
            token.cancel()  # as if the user pressed Stop during the first denoising step
            check()

        return generate_batch(pipe, jobs, settings, width, height, check_and_cancel)

    with pytest.raises(CancelledError, match="after 0 of 2"):
        run_batch(builtin_pipe, build_jobs(["a red circle"], [1, 2]), tmp_path, _settings(batch_size=2),
                  token=token, generate=generate)
    assert steps_seen == [1]
    assert list(tmp_path.glob("*.png")) == []
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
