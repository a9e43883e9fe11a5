"""The long-video executor with an analytic denoiser: fixed given frames, full coverage, batch invariance,
determinism, resuming, reconstruction guidance against its closed form, text routing, latent decoding."""

import pytest
import torch

from vidiff.diffusion import NoiseSchedule
from vidiff.pipelines.denoiser import history_guided, reconstruction_guidance
from vidiff.pipelines.inputs import Conditioning, GivenFrames, ResumeOptions, RunOptions
from vidiff.pipelines.long_video import Interrupted, sample_long_videos
from vidiff.pipelines.model import VideoModel
from vidiff.pipelines.stages import Item, SamplerSettings, group_items, item_generator
from vidiff.schemes import batches, plan


T, K, C, H, W = 40, 8, 1, 4, 4
SCHEDULE = NoiseSchedule("linear", num_timesteps=100)


class AnalyticNet(torch.nn.Module):
    """x0_hat = 0.8 * (0.5 * mean of observed frames + 0.3 sin(0.37 frame) + context) + 0.1 tanh(x): eps-prediction."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # a device to read
        self.calls = []

    def forward(self, x, t, frame_idx, observed, context=None):
        self.calls.append(x.shape[0])
        obs = observed[:, :, None, None, None].float()
        mean_obs = (x * obs).sum(1, keepdim=True) / obs.sum(1, keepdim=True).clamp(min=1)
        target = 0.5 * mean_obs + 0.3 * torch.sin(0.37 * frame_idx.float())[:, :, None, None, None]
        if context is not None:
            target = target + context.mean(dim=(1, 2))[:, None, None, None, None]
        x0 = 0.8 * target + 0.1 * torch.tanh(x)
        return SCHEDULE.predict_eps(x, t, x0)


def _model(**kw):
    return VideoModel(AnalyticNet(), SCHEDULE, "eps", (C, H, W), (C, H, W), max_frames=K, **kw)


def _run(model=None, scheme="hierarchy-2", given_idx=(), seed=0, budget=64, settings=None, context=None,
         null_context=None, state_dir=None, resume=False, stop_after_wave=None, decode_chunk=16, **kw):
    model = model or _model()
    stages = plan(scheme, T, K, None, given=given_idx)
    given = None
    if given_idx:
        frames = torch.linspace(-0.9, 0.9, len(given_idx))[None, :, None, None, None].expand(1, -1, C, H, W)
        given = GivenFrames(frames, given_idx)
    settings = settings or SamplerSettings(sampler="ddim", steps=4)
    return sample_long_videos(
        model, stages, length=T, num_videos=2, seed=seed, settings=settings, given=given,
        conditioning=Conditioning(context, null_context),
        resume=ResumeOptions(state_dir, resume, stop_after_wave),
        options=RunOptions(batch_budget=budget, decode_chunk=decode_chunk), **kw,
    )


def test_given_frames_fixed_and_every_frame_filled():
    given_idx = [0, 1, 2]
    out = _run(given_idx=given_idx)
    assert out.shape == (2, T, C, H, W)
    expected = torch.linspace(-0.9, 0.9, 3)[:, None, None, None].expand(3, C, H, W)
    assert torch.equal(out[0, given_idx], expected) and torch.equal(out[1, given_idx], expected)
    assert torch.isfinite(out).all()
    filled = (out != 0).flatten(2).any(-1)  # a frame left at its zero initialisation would show here
    assert filled[:, 3:].all()


@pytest.mark.parametrize("scheme", ["hierarchy-2", "autoregressive", "adaptive-hierarchy-2"])
def test_batched_equals_sequential(scheme):
    seq_model, bat_model = _model(), _model()
    seq = _run(seq_model, scheme=scheme, given_idx=[0, 1], budget=1)
    bat = _run(bat_model, scheme=scheme, given_idx=[0, 1], budget=64)
    assert torch.equal(seq, bat)
    assert len(bat_model.net.calls) < len(seq_model.net.calls)  # batching did take place (fewer forwards)
    assert max(bat_model.net.calls) > 1 or scheme != "hierarchy-2"


def lockstep_ddpm(denoiser, noise, schedule, sampler, generator, known, known_mask, steps, prediction, **kw):
    """A stand-in core that takes per-sample generators: DDPM ancestral steps, each sample's noise its own."""
    from vidiff.diffusion import make_timesteps

    gens = generator if isinstance(generator, list) else [generator]
    ts = make_timesteps(schedule.num_timesteps, steps, "leading")
    spaced = schedule.respace(ts)
    x = noise
    for i, t in enumerate(ts):
        x = torch.where(known_mask, known, x)
        tb = torch.full((x.shape[0],), t, dtype=torch.long)
        x0, _ = schedule.to_x0_eps(denoiser(x, tb), x, tb, prediction)
        mean, var, _ = spaced.q_posterior(x0, x, len(ts) - 1 - i)
        z = torch.stack([torch.randn(x.shape[1:], generator=g) for g in gens])
        x = mean + var**0.5 * z if i < len(ts) - 1 else mean
    return torch.where(known_mask, known, x)


lockstep_ddpm.per_sample_generators = True


def test_stochastic_sampler_batch_invariant_with_per_sample_generators():
    settings = SamplerSettings(sampler="ddpm", steps=4)
    seq = _run(given_idx=[0], budget=1, settings=settings, sample_fn=lockstep_ddpm)
    bat = _run(given_idx=[0], budget=64, settings=settings, sample_fn=lockstep_ddpm)
    assert torch.equal(seq, bat)
    assert not torch.equal(seq, _run(given_idx=[0], budget=1, settings=settings, sample_fn=lockstep_ddpm, seed=1))


def test_deterministic_per_seed():
    a, b, c = _run(seed=3), _run(seed=3), _run(seed=4)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a[0], a[1])  # videos differ from each other


def test_resume_equals_uninterrupted(tmp_path):
    full = _run(given_idx=[0])
    waves = len(batches(plan("hierarchy-2", T, K, None, given=[0])))
    assert waves >= 3
    with pytest.raises(Interrupted):
        _run(given_idx=[0], state_dir=tmp_path, stop_after_wave=1)
    assert (tmp_path / "state.safetensors").is_file() and (tmp_path / "state.json").is_file()
    model = _model()
    resumed = _run(model, given_idx=[0], state_dir=tmp_path, resume=True, budget=3)  # another budget is fine
    assert torch.equal(resumed, full)
    stages = plan("hierarchy-2", T, K, None, given=[0])
    done_waves = batches(stages)[:2]
    assert sum(model.net.calls) == (len(stages) - sum(map(len, done_waves))) * 2 * 4  # only the rest ran
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    with pytest.raises(ValueError, match="resume"):
        _run(given_idx=[0], state_dir=tmp_path, resume=True, seed=99)


def test_progress_counts_every_stage_step():
    model = _model()
    _run(model, budget=5)
    stages = plan("hierarchy-2", T, K, None)
    assert sum(model.net.calls) == len(stages) * 2 * 4


def test_group_items_same_size_and_budget():
    items = [Item(v, s, tuple(range(n)), (100,)) for s, n in enumerate([3, 2, 3, 3]) for v in range(2)]
    groups = group_items(items, 3)
    assert [len(g) for g in groups] == [3, 3, 2]
    assert all(len({len(it.frames) for it in g}) == 1 for g in groups)
    assert sorted((it for g in groups for it in g), key=items.index) == items
    with pytest.raises(ValueError, match="batch_budget"):
        group_items(items, 0)
    a, b = item_generator(0, 1, 2), item_generator(0, 2, 1)
    assert not torch.equal(torch.randn(3, generator=a), torch.randn(3, generator=b))


def test_reconstruction_guidance_closed_form():
    """x0_hat of every frame = mean of z over frames (x0-prediction): eq. 7 has a closed-form gradient."""
    b, k, w_r, t = 2, 4, 3.0, torch.tensor([50, 70])
    net = lambda z, tt, fidx, obs, ctx: z.mean(1, keepdim=True).expand_as(z)
    observed = torch.tensor([[True, False, True, False]] * b)
    known = torch.randn(b, k, C, H, W)
    noise = torch.randn(b, k, C, H, W)
    x = torch.randn(b, k, C, H, W)
    fn = reconstruction_guidance(net, SCHEDULE, "x0", torch.arange(k).expand(b, k), observed, known, noise, w_r)
    out = fn(x, t, None)
    mask = observed[:, :, None, None, None]
    z = torch.where(mask, SCHEDULE.q_sample(known, t, noise), x)
    m = z.mean(1, keepdim=True)
    grad = (2.0 / k) * ((m - known) * mask).sum(1, keepdim=True)  # d/dz_a sum_b ||x_b - m||^2
    alpha = SCHEDULE.at("sqrt_alphas_cumprod", t, x)
    expected = m - w_r * alpha / 2 * grad
    assert torch.allclose(out[:, [1, 3]], expected.expand(b, k, C, H, W)[:, [1, 3]], atol=1e-5)
    assert torch.equal(out[:, [0, 2]], known[:, [0, 2]])


def test_reconstruction_guidance_in_executor_keeps_given_frames():
    settings = SamplerSettings(sampler="ddim", steps=3, recon_guidance=2.0)
    out = _run(given_idx=[0, 5], settings=settings)
    assert torch.isfinite(out).all() and torch.equal(out[:, 0], out[:, 0].new_full((2, C, H, W), -0.9))


def test_history_guidance_closed_form():
    """uncond + s (cond - uncond); uncond sees the observed slots as the given noise at the top timestep, unmarked."""
    b, k, s, top = 2, 4, 3.0, 99
    seen = []

    def net(z, tt, fidx, obs, ctx):
        seen.append((z.clone(), tt.clone(), obs.clone()))
        return z * (1 + obs[:, :, None, None, None].float()) + tt[:, :, None, None, None].float() / 100

    observed = torch.tensor([[True, False, True, False]] * b)
    noise, x = torch.randn(b, k, C, H, W), torch.randn(b, k, C, H, W)
    out = history_guided(net, torch.arange(k).expand(b, k), observed, top, s, noise)(x, torch.tensor([50, 70]), None)
    mask = observed[:, :, None, None, None]
    t_cond = torch.tensor([50, 70])[:, None].expand(b, k)
    t_unc = torch.where(observed, top, t_cond)
    cond = x * (1 + mask.float()) + t_cond[:, :, None, None, None] / 100
    uncond = torch.where(mask, noise, x) + t_unc[:, :, None, None, None] / 100
    assert torch.allclose(out, uncond + s * (cond - uncond), atol=1e-6)
    (z, tt, obs), = seen  # one forward pass holds both branches
    assert z.shape[0] == 2 * b and not obs[b:].any() and torch.equal(obs[:b], observed)


def test_history_guidance_in_executor():
    """Scale 1 is the plain conditional sampler; another scale changes the generated frames, not the given ones."""
    plain = _run(given_idx=[0, 5], settings=SamplerSettings(sampler="ddim", steps=3))
    same = _run(given_idx=[0, 5], settings=SamplerSettings(sampler="ddim", steps=3, history_guidance=1.0))
    guided = _run(given_idx=[0, 5], settings=SamplerSettings(sampler="ddim", steps=3, history_guidance=2.0))
    assert torch.equal(plain, same)
    assert torch.equal(guided[:, [0, 5]], plain[:, [0, 5]]) and not torch.allclose(guided, plain)
    with pytest.raises(ValueError, match="history_guidance"):
        _run(given_idx=[0, 5], settings=SamplerSettings(sampler="ddim", steps=3, history_guidance=2.0,
                                                         recon_guidance=1.0))


def test_text_context_routed_per_video_with_cfg():
    context = torch.tensor([0.0, 0.4])[:, None, None].expand(2, 3, 5).contiguous()
    null = torch.zeros(1, 3, 5)
    settings = SamplerSettings(sampler="ddim", steps=3, guidance=2.0)
    a = _run(settings=settings, context=context, null_context=null, budget=1)
    b = _run(settings=settings, context=context, null_context=null, budget=64)
    c = _run(settings=settings, context=torch.zeros(2, 3, 5), null_context=null)
    assert torch.equal(a, b)
    assert torch.equal(c[0], a[0]) and not torch.equal(c[1], a[1])  # video 1's prompt moved only video 1


class FakeAutoencoder:
    def __init__(self):
        self.chunks = []

    def decode_video(self, z, chunk_size=16):
        self.chunks.append(chunk_size)
        return z.repeat_interleave(2, dim=-1).repeat_interleave(2, dim=-2).repeat(1, 1, 3, 1, 1)


def test_latent_frames_decoded_in_chunks():
    ae = FakeAutoencoder()
    model = VideoModel(AnalyticNet(), SCHEDULE, "eps", (C, H, W), (3, 2 * H, 2 * W), autoencoder=ae, max_frames=K)
    out = _run(model, decode_chunk=7)
    assert out.shape == (2, T, 3, 2 * H, 2 * W) and ae.chunks == [7]
    raw = _run(_model(), decode=False)
    assert torch.equal(out[:, :, :1, ::2, ::2], raw)


def test_bad_given_shapes():
    with pytest.raises(ValueError, match="given"):
        sample_long_videos(_model(), plan("hierarchy-2", T, K, None, given=[0]), length=T,
                           given=GivenFrames(torch.zeros(1, 2, C, H, W), [0]))


def test_real_unet_batched_matches_sequential():
    """With the real U-Net, batching changes only floating-point summation order (if anything)."""
    from vidiff.nn.unet import SpaceTimeUNet

    net = SpaceTimeUNet(in_channels=C, model_channels=8, channel_mult=[1], num_res_blocks=1, attention_resolutions=[],
                        num_heads=1, norm_groups=4).eval()
    model = VideoModel(net, SCHEDULE, "eps", (C, H, W), (C, H, W), max_frames=K)
    seq = _run(model, given_idx=[0], budget=1, settings=SamplerSettings("ddim", 2))
    bat = _run(model, given_idx=[0], budget=64, settings=SamplerSettings("ddim", 2))
    assert torch.allclose(seq, bat, atol=1e-5)
