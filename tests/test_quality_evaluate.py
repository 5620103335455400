"""Base vs fragment evaluation through real pipelines: a model against itself, and cancelling."""

from __future__ import annotations

import pytest
from quality_clip_helpers import TINY_CLIP_NAME, write_tiny_clip

from core.errors import CancelledError
from core.progress import CancelToken
from core.quality.evaluate import EvalConfig, evaluate_pair
from core.quality.metrics import Availability, ClipScorer
from core.quality.perf import GenerationSettings


@pytest.fixture()
def one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_model_against_itself_has_no_quality_loss(builtin_pipe, one_thread, tmp_path):
    config_path, weights = write_tiny_clip(tmp_path)
    scorer = ClipScorer.from_local_weights(TINY_CLIP_NAME, weights, config_path)
    config = EvalConfig(prompts=["a red circle", "a blue square"], seeds=[0, 1],
                        settings=GenerationSettings(steps=2), measure_performance=False)
    events = []
    result = evaluate_pair(builtin_pipe, builtin_pipe, config, scorer, Availability(True, "test"),
                           progress=events.append)
    assert len(result.samples) == 4 and len(result.base_images) == 4
    assert all(s["ssim"] == pytest.approx(1.0) and s["phash_distance"] == 0 for s in result.samples)
    assert result.clip["available"] and result.clip["delta_mean"] == pytest.approx(0.0, abs=1e-4)
    assert result.quality["ssim_mean"] == pytest.approx(1.0)
    # Different seeds really give different images (the comparison is not trivially equal).
    from core.quality.metrics import ssim

    assert ssim(result.base_images[0], result.base_images[1]) < 0.99
    assert events[-1].done == events[-1].total and events[-1].message == "evaluation done"


def test_cancelling_stops_at_the_next_unit_of_work(builtin_pipe, one_thread):
    token = CancelToken()
    seen = []

    def cancel_after_first(event):
        seen.append(event.message)
        token.cancel()

    config = EvalConfig(prompts=["a red circle", "a blue square"], seeds=[0],
                        settings=GenerationSettings(steps=1), measure_performance=False)
    with pytest.raises(CancelledError):
        evaluate_pair(builtin_pipe, builtin_pipe, config, progress=cancel_after_first, token=token)
    assert len(seen) == 1


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
def test_a_lower_precision_fragment_runs_in_the_float32_pipeline(builtin_pipe, one_thread, dtype_name):
    import copy

    import torch

    from core.quality.metrics import ssim
    from core.quality.perf import generate
    from core.report.fragment_source import pipeline_with_unet

    dtype = getattr(torch, dtype_name)
    fragment = pipeline_with_unet(builtin_pipe, copy.deepcopy(builtin_pipe.unet).to(dtype))
    assert fragment.unet.dtype == dtype and builtin_pipe.unet.dtype == torch.float32
    settings = GenerationSettings(steps=2)
    [low] = generate(fragment, ["a red circle"], [0], settings)
    [full] = generate(builtin_pipe, ["a red circle"], [0], settings)
    # The same weights at lower precision draw nearly the same image; the base pipeline is left as it was.
    assert 0.8 < ssim(full, low) <= 1.0
    assert not builtin_pipe.unet._forward_pre_hooks
