"""Profiling engine on tiny seeded UNets: restore, hand-computed references, halves, aggregation, buckets."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from core.profiling import HeadProfiler, ProfilerConfig, profile_unet
from core.profiling.structure import ProfilingError, discover


def make_unet(seed: int = 0, sdxl: bool = False):
    from core.offline import import_diffusers

    diffusers = import_diffusers()
    config = dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
                  down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                  up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=(2, 4),
                  cross_attention_dim=24, norm_num_groups=8)
    if sdxl:
        config.update(addition_embed_type="text_time", addition_time_embed_dim=4,
                      projection_class_embeddings_input_dim=6 * 4 + 12, transformer_layers_per_block=(1, 2),
                      down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                      up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4))
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return diffusers.UNet2DConditionModel(**config).eval()
    finally:
        torch.random.set_rng_state(state)


def inputs(batch=2, tokens=77, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 4, 8, 8, generator=gen), torch.tensor(500),
            torch.randn(batch, tokens, 24, generator=gen))


@pytest.fixture(scope="module")
def unet():
    return make_unet()


def run_once(unet, sample, t, context, cfg=True, config=None):
    """One UNet call inside a profiler, folded as step 0 of seed 0 / prompt 0; returns (profiler, output)."""
    prof = HeadProfiler(unet, steps=1, cfg=cfg, config=config)
    with prof, torch.no_grad():
        out = unet(sample, t, encoder_hidden_states=context).sample
        prof.end_step(0)
    return prof, out


def capture_attention_inputs(unet, name, sample, t, context):
    seen = {}
    module = unet.get_submodule(name)

    def hook(mod, args, kwargs):
        seen["x"] = args[0] if args else kwargs["hidden_states"]
        seen["ctx"] = kwargs.get("encoder_hidden_states")

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    with torch.no_grad():
        unet(sample, t, encoder_hidden_states=context)
    handle.remove()
    return module, seen["x"], seen["ctx"]


def reference_heads(attn, x, ctx):
    """By hand: per-head probabilities and outputs, no diffusers processor involved."""
    ctx = x if ctx is None else ctx
    b, n, _ = x.shape
    h = attn.heads
    q, k, v = attn.to_q(x), attn.to_k(ctx), attn.to_v(ctx)
    d = q.shape[-1] // h
    q, k, v = (z.view(b, -1, h, d).transpose(1, 2) for z in (q, k, v))
    probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
    return probs, probs @ v  # (b, h, n, keys), (b, h, n, d)


def test_restore_is_exact_and_profiled_output_matches(unet):
    sample, t, context = inputs()
    untouched = copy.deepcopy(unet)
    before = {name: proc for name, proc in unet.attn_processors.items()}
    with torch.no_grad():
        expected = untouched(sample, t, encoder_hidden_states=context).sample
    _, profiled = run_once(unet, sample, t, context)
    with torch.no_grad():
        after = unet(sample, t, encoder_hidden_states=context).sample
    assert torch.equal(after, expected)  # bit-identical once the context has exited
    assert all(unet.attn_processors[name] is proc for name, proc in before.items())
    assert all(not m._forward_pre_hooks for m in unet.modules())
    torch.testing.assert_close(profiled, expected, rtol=1e-4, atol=1e-5)  # explicit cross path: same maths


def test_restore_after_an_error_inside_the_context(unet):
    before = dict(unet.attn_processors)
    with pytest.raises(RuntimeError, match="boom"), HeadProfiler(unet, steps=1):
        assert type(next(iter(unet.attn_processors.values()))).__name__ == "ProfilingAttnProcessor"
        raise RuntimeError("boom")
    assert all(unet.attn_processors[name] is proc for name, proc in before.items())


def test_unsupported_processor_is_refused_and_nothing_changes(unet):
    from diffusers.models.attention_processor import AttnProcessor2_0

    class CustomProcessor(AttnProcessor2_0):
        pass

    model = copy.deepcopy(unet)
    last = [n for n, _ in model.named_modules() if n.endswith("attn2")][-1]
    model.get_submodule(last).set_processor(CustomProcessor())
    before = dict(model.attn_processors)
    with pytest.raises(ProfilingError, match="CustomProcessor"), HeadProfiler(model, steps=1):
        pass
    assert all(model.attn_processors[name] is proc for name, proc in before.items())


@pytest.mark.parametrize("kind", ["self", "cross"])
def test_energy_matches_a_hand_computed_reference(unet, kind):
    sample, t, context = inputs()
    modules, _ = discover(unet)
    record = [m for m in modules if m.kind == kind][-1]
    attn, x, ctx = capture_attention_inputs(unet, record.name, sample, t, context)
    with torch.no_grad():
        _, head_out = reference_heads(attn, x, ctx)
    expected = head_out.norm(dim=-1).mean(-1)  # (batch, heads): per item, mean over queries of ||o_h||
    prof, _ = run_once(unet, sample, t, context)
    energy = prof.sums["energy"][0, 0, :, record.offset:record.offset + record.heads]  # (2 halves, heads)
    torch.testing.assert_close(energy, expected, rtol=1e-4, atol=1e-6)


def test_cross_attention_mass_and_entropy_match_reference(unet):
    sample, t, context = inputs()
    modules, _ = discover(unet)
    record = [m for m in modules if m.kind == "cross"][0]
    attn, x, ctx = capture_attention_inputs(unet, record.name, sample, t, context)
    with torch.no_grad():
        probs, _ = reference_heads(attn, x, ctx)
    prof, _ = run_once(unet, sample, t, context)
    cols = slice(record.cross_offset, record.cross_offset + record.heads)
    per_token = prof.sums["token_mass_prompt"][0, :, cols]  # (2, heads, 77), one item per half
    torch.testing.assert_close(per_token, probs.mean(2), rtol=1e-4, atol=1e-6)
    # every query distributes exactly one unit of attention over the 77 tokens
    torch.testing.assert_close(per_token.sum(-1), torch.ones(2, record.heads), rtol=1e-5, atol=1e-5)
    entropy = -(probs * probs.log()).sum(-1).mean(-1)
    torch.testing.assert_close(prof.sums["entropy"][0, 0, :, cols], entropy, rtol=1e-4, atol=1e-5)
    content = probs.mean(2)[..., 1:].sum(-1)  # default content mask: every token but the start token
    torch.testing.assert_close(prof.sums["mass"][0, 0, :, cols], content, rtol=1e-4, atol=1e-5)


def test_cfg_halves_are_kept_apart(unet):
    sample, t, _ = inputs(batch=1)
    gen = torch.Generator().manual_seed(5)
    uncond_ctx, cond_ctx = torch.zeros(1, 77, 24), torch.randn(1, 77, 24, generator=gen) * 3
    both, _ = run_once(unet, torch.cat([sample, sample]), t, torch.cat([uncond_ctx, cond_ctx]), cfg=True)
    only_cond, _ = run_once(unet, sample, t, cond_ctx, cfg=False)
    only_uncond, _ = run_once(unet, sample, t, uncond_ctx, cfg=False)
    for key in ("energy", "mass", "entropy"):
        torch.testing.assert_close(both.sums[key][0, 0, 1], only_cond.sums[key][0, 0, 1], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(both.sums[key][0, 0, 0], only_uncond.sums[key][0, 0, 1], rtol=1e-4, atol=1e-6)
        assert not torch.allclose(both.sums[key][0, 0, 0], both.sums[key][0, 0, 1])
        assert torch.count_nonzero(only_cond.sums[key][0, 0, 0]) == 0  # no CFG: nothing in the uncond half
    assert only_cond.count[0][0] == [0.0, 1.0] and both.count[0][0] == [1.0, 1.0]


def test_ffn_stat_matches_reference(unet):
    sample, t, context = inputs()
    _, ffns = discover(unet)
    ff = ffns[0]
    seen = {}
    handle = unet.get_submodule(ff.name).net[2].register_forward_pre_hook(lambda m, a: seen.setdefault("x", a[0]))
    with torch.no_grad():
        unet(sample, t, encoder_hidden_states=context)
    handle.remove()
    prof, _ = run_once(unet, sample, t, context)
    got = prof.sums["ffn"][:, ff.offset:ff.offset + ff.inner]
    torch.testing.assert_close(got, seen["x"].abs().mean(1), rtol=1e-4, atol=1e-6)
    assert ff.inner == 4 * 16 and got.shape == (2, ff.inner)


def test_two_unet_calls_in_one_step_add_up(unet):
    """Second-order schedulers call the UNet twice per step: the step holds the sum of both calls."""
    sample, t, context = inputs()
    single, _ = run_once(unet, sample, t, context)
    prof = HeadProfiler(unet, steps=1)
    with prof, torch.no_grad():
        unet(sample, t, encoder_hidden_states=context)
        unet(sample, t, encoder_hidden_states=context)
        prof.end_step(0)
    for key in ("energy", "mass", "entropy", "ffn", "token_mass_prompt"):
        torch.testing.assert_close(prof.sums[key], 2 * single.sums[key], rtol=1e-5, atol=1e-6)
    assert prof.count[0][0] == [2.0, 2.0]


def test_latent_size_change_between_steps(unet):
    """Per-query buffers widen and shrink with the latent size; each step still equals a run at its size."""
    small, t, context = inputs()
    large = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(3))
    prof = HeadProfiler(unet, steps=3)
    with prof, torch.no_grad():
        for step, sample in enumerate((small, large, small)):
            unet(sample, t, encoder_hidden_states=context)
            prof.end_step(step)
    for step, sample in enumerate((small, large, small)):
        alone, _ = run_once(unet, sample, t, context)
        for key in ("energy", "mass", "entropy"):
            torch.testing.assert_close(prof.sums[key][0, step], alone.sums[key][0, 0], rtol=1e-5, atol=1e-6)


def test_aggregate_over_seeds_gives_mean_and_variance_of_per_seed_means(unet):
    kwargs = dict(prompts=1, steps=2, guidance=3.0, latent_hw=(8, 8))
    together = profile_unet(unet, seeds=[3, 4, 5], **kwargs)
    singles = [profile_unet(unet, seeds=[s], **kwargs) for s in (3, 4, 5)]
    for stat in ("energy", "token_mass", "entropy"):
        per_seed = {name: torch.stack([p.head_stat(stat)[name] for p in singles]) for name in singles[0].head_stat(stat)}
        mean, var = together.head_stat(stat), together.head_stat(stat + "_var")
        for name, values in per_seed.items():
            torch.testing.assert_close(mean[name], values.mean(0), rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(var[name], values.var(0, unbiased=True), rtol=1e-4, atol=1e-9)
            assert mean[name].dtype == torch.float32 and mean[name].shape == (values.shape[1],)
        assert any(float(v.max()) > 0 for v in var.values())  # seeds really differ
    seed_table = together.seed_stat("energy")
    assert all(v.shape[0] == 3 for v in seed_table.values())


def test_step_buckets_average_their_steps(unet):
    kwargs = dict(prompts=1, seeds=[0], steps=6, guidance=2.0, latent_hw=(8, 8))
    fine = profile_unet(unet, config=ProfilerConfig(max_step_buckets=50), **kwargs)
    coarse = profile_unet(unet, config=ProfilerConfig(max_step_buckets=3), **kwargs)
    assert coarse.meta["step_buckets"] == [0, 0, 1, 1, 2, 2]
    for name, per_step in fine.step_stat("energy").items():
        assert per_step.shape[0] == 6
        torch.testing.assert_close(coarse.step_stat("energy")[name], per_step.view(3, 2, -1).mean(1),
                                   rtol=1e-5, atol=1e-6)
    first_module = next(iter(fine.step_stat("energy").values()))
    assert not torch.allclose(first_module[0], first_module[-1])  # steps really differ, so buckets matter


def test_sdxl_style_unet_with_added_conditioning_profiles_every_head():
    model = make_unet(sdxl=True)
    profile = profile_unet(model, prompts=1, seeds=[0, 1], steps=2, latent_hw=(8, 8), family="sdxl")
    attention = [n for n, m in model.named_modules() if type(m).__name__ == "Attention"]
    assert [m.name for m in profile.modules] == attention
    assert sum(m.heads for m in profile.modules) == sum(model.get_submodule(n).heads for n in attention)
    energies = profile.head_stat("energy")
    assert all(torch.isfinite(v).all() and (v > 0).all() for v in energies.values())


def test_spatial_maps_for_chosen_modules(unet):
    modules, _ = discover(unet)
    name = [m for m in modules if m.kind == "cross"][0].name
    profile = profile_unet(unet, prompts=1, seeds=[0], steps=2, latent_hw=(8, 8),
                           config=ProfilerConfig(spatial_map_modules=[name], map_size=4))
    maps = profile.spatial_map(name)
    assert maps.shape == (2, 77, 4, 4)
    # averaged probabilities over 8x8 queries pooled to 4x4: summed over tokens, every cell holds one unit
    torch.testing.assert_close(maps.sum(1), torch.ones(2, 4, 4), rtol=1e-5, atol=1e-5)
    with pytest.raises(ProfilingError, match="not a cross-attention"):
        HeadProfiler(unet, config=ProfilerConfig(spatial_map_modules=[modules[0].name]))
