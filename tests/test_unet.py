"""SpaceTimeUNet behaviour: shapes, frame-position invariances, observed frames, inflation, options, bad input."""

import pytest
import torch


from vidiff.nn import SpaceTimeUNet, inflate

TINY = dict(
    in_channels=3, model_channels=8, channel_mult=[1, 2], num_res_blocks=1, attention_resolutions=[2],
    num_heads=2, norm_groups=4,
)


def _randomize(model: torch.nn.Module, scale: float = 0.1) -> torch.nn.Module:
    """Perturb every parameter, so zero-initialised output layers (temporal, observed_in, out) matter."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)
    return model


def _model(**kwargs) -> SpaceTimeUNet:
    return _randomize(SpaceTimeUNet(**{**TINY, **kwargs})).eval()


def _video(b=2, t=4, c=3, s=8):
    return torch.randn(b, t, c, s, s)


def test_shapes_video_and_image():
    model = _model(out_channels=5)
    assert model(_video(), torch.tensor([3, 900])).shape == (2, 4, 5, 8, 8)
    assert model(torch.randn(2, 3, 8, 8), torch.tensor([3, 900])).shape == (2, 5, 8, 8)
    assert model(_video(), 7).shape == (2, 4, 5, 8, 8)  # scalar timestep broadcasts


def test_shifting_frame_idx_leaves_output_unchanged():
    model, x, ts = _model(), _video(), torch.tensor([10, 400])
    frame_idx = torch.tensor([[0, 1, 5, 300], [3, 9, 10, 40]])
    observed = torch.tensor([[True, False, False, True], [False, True, False, False]])
    ref = model(x, ts, frame_idx, observed)
    torch.testing.assert_close(model(x, ts, frame_idx + 1234, observed), ref, atol=1e-5, rtol=1e-5)
    # ... while the gaps between frames do matter
    assert (model(x, ts, frame_idx * 2, observed) - ref).abs().max() > 1e-4


def test_permuting_frames_permutes_output():
    model, x, ts = _model(), _video(), torch.tensor([10, 400])
    frame_idx = torch.tensor([[0, 1, 5, 300], [3, 9, 10, 40]])
    observed = torch.tensor([[True, False, False, True], [False, True, False, False]])
    perm = torch.tensor([2, 0, 3, 1])
    ref = model(x, ts, frame_idx, observed)
    out = model(x[:, perm], ts, frame_idx[:, perm], observed[:, perm])
    torch.testing.assert_close(out, ref[:, perm], atol=1e-5, rtol=1e-5)


def test_temporal_layers_mix_frames_only_when_on():
    x, ts = _video(), torch.tensor([10, 400])
    x2 = x.clone()
    x2[:, 0] += 1.0  # change frame 0 only
    on, off = _model(), _model(temporal=False)
    assert (on(x2, ts) - on(x, ts))[:, 1:].abs().max() > 1e-4
    torch.testing.assert_close(off(x2, ts)[:, 1:], off(x, ts)[:, 1:])


def test_observed_frames_get_timestep_zero():
    model = _model(temporal=False, observed_channel=False)
    x = _video(b=1)
    observed = torch.tensor([[False, True, False, False]])
    out = model(x, torch.tensor([600]), observed=observed)
    torch.testing.assert_close(out[:, 1], model(x[:, 1], torch.tensor([0])))
    torch.testing.assert_close(out[:, 0], model(x[:, 0], torch.tensor([600])))


def test_observed_indicator_channel_changes_observed_frames():
    model = _model(temporal=False)
    x, ts = _video(b=1), torch.tensor([0])  # timestep 0 everywhere: only the indicator differs
    observed = torch.tensor([[False, True, False, False]])
    diff = (model(x, ts, observed=observed) - model(x, ts)).abs().amax(dim=(2, 3, 4))
    assert diff[0, 1] > 1e-4 and diff[0, [0, 2, 3]].max() == 0


def test_image_mode_t1_equals_4d_input_and_skips_temporal():
    video, image = _model(), _model(temporal=False)
    image.load_state_dict(video.state_dict(), strict=False)
    x, ts = torch.randn(2, 3, 8, 8), torch.tensor([5, 50])
    torch.testing.assert_close(video(x[:, None], ts)[:, 0], video(x, ts))
    torch.testing.assert_close(video(x, ts), image(x, ts))


def test_inflated_model_equals_image_model_per_frame():
    image = _model(temporal=False, observed_channel=False, use_scale_shift_norm=False)
    video = inflate(image)
    assert video.temporal_enabled and video.observed_in is not None
    x, ts = _video(), torch.tensor([30, 700])
    frame_idx = torch.tensor([[0, 2, 4, 6], [10, 50, 100, 400]])
    out = video(x, ts, frame_idx)
    for j in range(x.shape[1]):
        torch.testing.assert_close(out[:, j], image(x[:, j], ts), atol=1e-5, rtol=1e-5)
    # the new parameters are exactly the temporal ones, and only they train when the rest is frozen
    new = {id(p) for p in video.temporal_parameters()}
    assert new and new.isdisjoint(id(p) for p in video.spatial_parameters())
    assert len(video.spatial_parameters()) == len(list(image.parameters()))
    video.train().freeze_spatial()
    _randomize(video)
    video(x, ts, frame_idx).square().mean().backward()
    assert all(p.grad is None for p in video.spatial_parameters())
    assert all(p.grad is not None for p in video.temporal_parameters())


def test_inflate_rejects_bad_overrides():
    image = _model(temporal=False)
    with pytest.raises(ValueError, match="unknown SpaceTimeUNet arguments"):
        inflate(image, heads=3)
    with pytest.raises(ValueError, match="spatial layers"):
        inflate(image, model_channels=16)


def test_cross_attention_uses_context_per_video():
    model = _model(context_dim=6, temporal=False)
    x, ts = _video(), torch.tensor([10, 20])
    ctx = torch.randn(2, 3, 6)
    out = model(x, ts, context=ctx)
    for i in range(2):  # each video's frames see that video's context
        torch.testing.assert_close(out[i : i + 1, 2], model(x[i : i + 1, 2], ts[i : i + 1], context=ctx[i : i + 1]))
    assert (model(x, ts, context=ctx.flip(0)) - out).abs().max() > 1e-4


def test_gradient_checkpointing_same_outputs_and_grads():
    plain = _model(context_dim=6, dropout=0.0).train()
    ckpt = _model(context_dim=6, gradient_checkpointing=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x, ts, ctx = _video(), torch.tensor([10, 20]), torch.randn(2, 3, 6)
    outs = []
    for model in (plain, ckpt):
        out = model(x, ts, torch.tensor([[0, 3, 4, 9]] * 2), context=ctx)
        out.square().mean().backward()
        outs.append(out)
    torch.testing.assert_close(outs[0], outs[1])
    for (n, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=n)


def test_channels_last_and_backends_give_same_output():
    ref_model = _model(context_dim=6)
    x, ts, ctx = _video(), torch.tensor([10, 20]), torch.randn(2, 3, 6)
    ref = ref_model(x, ts, context=ctx)
    cl = SpaceTimeUNet(**TINY, context_dim=6, channels_last=True).eval()
    cl.load_state_dict(ref_model.state_dict())
    torch.testing.assert_close(cl(x, ts, context=ctx), ref, atol=1e-5, rtol=1e-5)
    for backend in ("sdpa", "math"):
        ref_model.set_attention(backend, chunk_size=3)
        torch.testing.assert_close(ref_model(x, ts, context=ctx), ref, atol=1e-5, rtol=1e-5)


def test_bf16_autocast_forward_is_close_to_fp32():
    model = _model(context_dim=6)
    x, ts, ctx = _video(), torch.tensor([10, 20]), torch.randn(2, 3, 6)
    ref = model(x, ts, context=ctx)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, ts, context=ctx)
    assert torch.isfinite(out).all()
    assert (out.float() - ref).abs().max() < 0.05 * ref.abs().max()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: m(torch.randn(2, 4, 3, 8), torch.tensor([1, 2])), "rank 4|x must"),
        (lambda m: m(torch.randn(2, 4, 3, 8, 8, 1), torch.tensor([1, 2])), "rank 6"),
        (lambda m: m(torch.randn(2, 4, 5, 8, 8), torch.tensor([1, 2])), "3 channels"),
        (lambda m: m(torch.randn(2, 4, 3, 7, 8), torch.tensor([1, 2])), "divisible by 2"),
        (lambda m: m(_video(), torch.tensor([1, 2, 3])), r"timesteps must have shape \(b,\) = \(2,\)"),
        (lambda m: m(_video(), torch.tensor([1, 2]), torch.zeros(2, 3, dtype=torch.long)), r"frame_idx.*\(2, 4\)"),
        (lambda m: m(_video(), torch.tensor([1, 2]), observed=torch.zeros(4, dtype=torch.bool)), r"observed.*\(4,\)"),
        (lambda m: m(_video(), torch.tensor([1, 2]), context=torch.randn(2, 3, 6)), "no cross-attention"),
    ],
)
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call(_model())


def test_bad_context_width_and_config():
    model = _model(context_dim=6)
    with pytest.raises(ValueError, match=r"context must have shape \(b, L, context_dim\) = \(2, L, 6\)"):
        model(_video(), torch.tensor([1, 2]), context=torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="attention_backend must be one of"):
        SpaceTimeUNet(**TINY, attention_backend="flash")
    with pytest.raises(ValueError, match="norm_groups"):
        SpaceTimeUNet(**{**TINY, "norm_groups": 3})


def test_patch_size_is_space_to_depth_around_the_same_net():
    """patch_size=2 on (3, 8, 8) frames == the patch-1 net with 12 channels on the space-to-depth video."""
    patched = _model(patch_size=2)
    flat = _model(in_channels=12)
    flat.load_state_dict(patched.state_dict())
    x, t = _video(), torch.tensor([10, 700])
    observed = torch.tensor([[True, False, True, False], [False, False, True, True]])
    down = lambda v: v.unflatten(3, (4, 2)).unflatten(5, (4, 2)).permute(0, 1, 2, 4, 6, 3, 5).flatten(2, 4)
    up = lambda v: v.unflatten(2, (3, 2, 2)).permute(0, 1, 2, 5, 3, 6, 4).flatten(5, 6).flatten(3, 4)
    assert torch.equal(up(down(x)), x)
    with torch.no_grad():
        out = patched(x, t, observed=observed)
        ref = up(flat(down(x), t, observed=observed))
    assert out.shape == x.shape and torch.allclose(out, ref, atol=1e-5)
    with_neighbours = _model(patch_size=2, nearest_observed=1)(x, t, observed=observed)
    assert with_neighbours.shape == x.shape


def test_patch_size_checked():
    with pytest.raises(ValueError, match="patch_size"):
        _model(patch_size=0)
    with pytest.raises(ValueError, match="patch_size=3"):
        _model(patch_size=3)(_video(), torch.tensor([1, 2]))
