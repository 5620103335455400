"""Seeds, prompts files, job order, and the batch sizer's decisions (no model needed)."""

from __future__ import annotations

import json

import pytest

from core.batch import BatchSizer, build_jobs, is_out_of_memory, parse_seeds, read_prompts_file
from core.batch.jobs import BatchInputError
from core.batch.sizing import OutOfMemoryError


def test_parse_seeds_ranges_lists_and_duplicates():
    assert parse_seeds("1-4") == [1, 2, 3, 4]
    assert parse_seeds("3, 7,9") == [3, 7, 9]
    assert parse_seeds("1-3,2,10-11") == [1, 2, 3, 10, 11]


@pytest.mark.parametrize("text, fragment", [("5-1", "backwards"), ("a-3", "not a number"), ("", "No seeds"),
                                            ("-4", "out of range")])
def test_parse_seeds_rejects_with_a_clear_message(text, fragment):
    with pytest.raises(BatchInputError, match=fragment):
        parse_seeds(text)


def test_read_prompts_text_and_json(tmp_path):
    text = tmp_path / "p.txt"
    text.write_text("\ufeffa red circle\n# a comment\n\n  a blue square  \n", encoding="utf-8")
    assert read_prompts_file(text) == ["a red circle", "a blue square"]
    js = tmp_path / "p.json"
    js.write_text(json.dumps(["one", {"prompt": "two"}, "  "]))
    assert read_prompts_file(js) == ["one", "two"]


def test_read_prompts_errors(tmp_path):
    with pytest.raises(BatchInputError, match="No prompts file"):
        read_prompts_file(tmp_path / "missing.txt")
    empty = tmp_path / "e.txt"
    empty.write_text("# only a comment\n")
    with pytest.raises(BatchInputError, match="holds no prompts"):
        read_prompts_file(empty)
    bad = tmp_path / "b.json"
    bad.write_text("{not json")
    with pytest.raises(BatchInputError, match="not valid JSON"):
        read_prompts_file(bad)


def test_jobs_are_prompt_major_with_unique_filenames():
    jobs = build_jobs(["a", "b"], [7, 8, 9])
    assert [(j.prompt, j.seed) for j in jobs] == [("a", 7), ("a", 8), ("a", 9), ("b", 7), ("b", 8), ("b", 9)]
    assert len({j.filename for j in jobs}) == 6


def test_out_of_memory_is_recognised():
    import torch

    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("[enforce fail at alloc_cpu.cpp] DefaultCPUAllocator: out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_auto_sizer_grows_while_faster_then_settles_on_the_best():
    sizer = BatchSizer("auto", max_auto=16)
    sizer.record_success(1, 5.0)  # warm-up: slow, never a baseline
    assert sizer.current == 2
    sizer.record_success(2, 2 * 0.5)
    assert sizer.current == 4
    sizer.record_success(4, 4 * 0.4)
    assert sizer.current == 8
    sizer.record_success(8, 8 * 0.45)  # slower per image than 4: go back to 4 and stay
    assert sizer.current == 4 and sizer.settled
    sizer.record_success(4, 4 * 0.3)
    assert sizer.current == 4


def test_auto_sizer_respects_memory_and_max():
    sizer = BatchSizer("auto", max_auto=8)
    sizer.record_success(1, 1.0)
    # 1 GB per image measured, 4 GB free of which 80% may be planned: 3 images fit, not 4.
    sizer.record_success(2, 1.0, bytes_per_image=10**9, free_bytes=int(4e9))
    assert sizer.current == 3
    capped = BatchSizer("auto", max_auto=2)
    capped.record_success(1, 1.0)
    capped.record_success(2, 1.0)
    assert capped.current == 2


def test_sizer_backs_off_on_out_of_memory_and_never_grows_past_the_failure():
    sizer = BatchSizer("auto", max_auto=16)
    sizer.record_success(1, 1.0)
    sizer.record_success(2, 1.0)
    sizer.record_success(4, 1.0)
    assert sizer.current == 8
    assert sizer.record_out_of_memory(8) == 4
    sizer.record_success(4, 0.5)  # faster, but 8 failed: the ceiling is 7
    assert sizer.current <= 7
    fixed = BatchSizer(6)
    assert fixed.record_out_of_memory(6) == 3
    with pytest.raises(OutOfMemoryError, match="single image"):
        BatchSizer(1).record_out_of_memory(1)


def test_sizer_rejects_a_zero_batch_size():
    with pytest.raises(Exception, match="at least 1"):
        BatchSizer(0)
