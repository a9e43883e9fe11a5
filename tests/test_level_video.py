"""The per-frame long-video executor (vidiff.pipelines.level_video) with an analytic denoiser and a tiny U-Net."""

from __future__ import annotations

import pytest
import torch

from vidiff.diffusion import NoiseSchedule
from vidiff.diffusion.per_frame import CLEAN
from vidiff.diffusion.samplers import sample_ddim
from vidiff.pipelines.level_video import initial_state, net_denoiser, run_level_plan
from vidiff.schemes.levels import level_plan

MU, STD = 0.7, 0.4
SCHEDULE = NoiseSchedule("linear", 1000)


def exact_eps(x, t, clean=None, frame_idx=None, videos=None):
    """The exact eps of data x0 ~ N(MU, STD^2) per element (frames independent), per-frame or shared t."""
    a = SCHEDULE.alphas_cumprod.to(x.dtype)[t]
    a = a.reshape(*a.shape, *([1] * (x.ndim - a.ndim)))
    return (1 - a).sqrt() * (x - a.sqrt() * MU) / (a * STD**2 + 1 - a)


SETTINGS = [
    ("df-pyramid", dict(steps=100, chunk=2)),
    ("df-autoregressive", dict(steps=100, chunk=3)),
    ("rolling", dict(steps=100)),
    ("fifo", dict(partitions=25)),
    ("fifo", dict(partitions=50, lookahead=True)),
]


@pytest.mark.parametrize("name, kwargs", SETTINGS)
def test_every_frame_is_plain_ddim_on_its_ladder_and_has_the_data_statistics(name, kwargs):
    """The exact denoiser treats elements independently, so whatever the schedule, each frame must end exactly
    where plain DDIM over the plan's ladder takes its initial noise; with 100 levels that is N(0.7, 0.4^2)."""
    plan = level_plan(name, 7, 4, num_timesteps=1000, **kwargs)
    shape = (1500,)
    out = run_level_plan(exact_eps, plan, SCHEDULE, shape, num_videos=2, seed=3)
    x0 = initial_state(plan, shape, 2, 3).reshape(14, 1, *shape)
    ref = sample_ddim(exact_eps, x0, SCHEDULE, list(plan.ladder[:-1])).reshape(out.shape)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=0)
    torch.testing.assert_close(out.mean((0, 2)), torch.full((7,), MU), atol=0.03, rtol=0)
    torch.testing.assert_close(out.std((0, 2)), torch.full((7,), STD), atol=0.03, rtol=0)


@pytest.mark.parametrize("name, kwargs", SETTINGS)
def test_gaussian_statistics_hold_with_a_given_prefix_noisy_history_and_history_guidance(name, kwargs):
    """The same closed form with 2 given frames, history shown at level 200 and history guidance s = 2: the
    exact denoiser of independent frames ignores the history, so guidance and history noise must change
    nothing: every generated frame is still plain DDIM over the ladder, N(0.7, 0.4^2); given frames stay."""
    plan = level_plan(name, 9, 4, num_timesteps=1000, given=2, history_level=200, **kwargs)
    shape, given = (1500,), torch.full((1, 2, 1500), -0.25)
    out = run_level_plan(exact_eps, plan, SCHEDULE, shape, num_videos=2, seed=4, given=given,
                         history_guidance=2.0)
    assert torch.equal(out[:, :2], given.expand(2, 2, 1500))
    z = initial_state(plan, shape, 2, 4, given)[:, 2:].reshape(14, 1, *shape)
    ref = sample_ddim(exact_eps, z, SCHEDULE, list(plan.ladder[:-1])).reshape(2, 7, *shape)
    torch.testing.assert_close(out[:, 2:], ref, atol=1e-4, rtol=0)
    torch.testing.assert_close(out[:, 2:].mean((0, 2)), torch.full((7,), MU), atol=0.03, rtol=0)
    torch.testing.assert_close(out[:, 2:].std((0, 2)), torch.full((7,), STD), atol=0.03, rtol=0)


def _recording(calls):
    def denoiser(x, t, clean, frame_idx, videos):
        calls.append(dict(x=x.clone(), t=t.clone(), clean=clean.clone(), idx=frame_idx.clone(), v=videos.clone()))
        return exact_eps(x, t)

    return denoiser


def test_given_frames_are_kept_and_shown_clean_or_at_the_history_level():
    given = torch.full((1, 2, 3), 0.5)
    clean_plan = level_plan("df-pyramid", 6, 4, 3, 1000, chunk=2, given=2)
    calls: list[dict] = []
    out = run_level_plan(_recording(calls), clean_plan, SCHEDULE, (3,), given=given)
    assert torch.equal(out[0, :2], given[0])
    first = calls[0]
    assert first["clean"][0].tolist() == [True, True, False, False] and first["t"][0, :2].tolist() == [0, 0]
    assert torch.equal(first["x"][0, :2], given[0])

    noisy_plan = level_plan("df-pyramid", 6, 4, 3, 1000, chunk=2, given=2, history_level=200)
    calls = []
    out = run_level_plan(_recording(calls), noisy_plan, SCHEDULE, (3,), given=given, seed=5)
    assert torch.equal(out[0, :2], given[0]), "the state keeps the clean frame; only the model's view is noised"
    first, second = calls[0], calls[1]
    assert not first["clean"].any() and first["t"][0, :2].tolist() == [200, 200]
    a = SCHEDULE.alphas_cumprod[200]
    noise = (first["x"][0, :2] - a.sqrt() * 0.5) / (1 - a).sqrt()
    assert noise.std() > 0.3, "the history is really noised"
    torch.testing.assert_close(second["x"][0, :2], first["x"][0, :2], rtol=0, atol=0)  # the same noise each step


def test_runs_are_deterministic_per_seed_and_independent_of_batching():
    plan = level_plan("fifo", 9, 4, None, 1000, partitions=2, lookahead=True)
    kw = dict(eta=1.0)
    a = run_level_plan(exact_eps, plan, SCHEDULE, (5,), num_videos=3, seed=1, batch_budget=16, **kw)
    b = run_level_plan(exact_eps, plan, SCHEDULE, (5,), num_videos=3, seed=1, batch_budget=1, **kw)
    c = run_level_plan(exact_eps, plan, SCHEDULE, (5,), num_videos=1, seed=1, **kw)
    d = run_level_plan(exact_eps, plan, SCHEDULE, (5,), num_videos=3, seed=2, **kw)
    assert torch.equal(a, b) and torch.equal(a[:1], c)
    assert not torch.allclose(a, d)


def test_every_window_is_one_evaluation():
    plan = level_plan("fifo", 9, 4, None, 1000, partitions=3)
    seen = []
    run_level_plan(exact_eps, plan, SCHEDULE, (2,), num_videos=2, on_step=lambda g, n, e: seen.append(e))
    assert seen[-1] == 2 * plan.evaluations == 2 * 3 * (9 + 4 - 1)


@pytest.fixture(scope="module")
def tiny_net():
    from vidiff.nn.unet import SpaceTimeUNet

    torch.manual_seed(0)
    return SpaceTimeUNet(in_channels=3, model_channels=8, channel_mult=[1], num_res_blocks=1,
                         attention_resolutions=[], num_heads=1, norm_groups=4).eval()


def test_fifo_runs_a_shared_timestep_unet_deterministically(tiny_net):
    """FIFO's premise: a model trained with one timestep per clip, given a different timestep per frame."""
    plan = level_plan("fifo", 10, 4, None, 100, partitions=1)
    schedule = NoiseSchedule("linear", 100)
    den = net_denoiser(tiny_net)
    a = run_level_plan(den, plan, schedule, (3, 8, 8), num_videos=2, seed=0, batch_budget=3)
    b = run_level_plan(den, plan, schedule, (3, 8, 8), num_videos=2, seed=0, batch_budget=1)
    assert a.shape == (2, 10, 3, 8, 8) and torch.isfinite(a).all()
    again = run_level_plan(den, plan, schedule, (3, 8, 8), num_videos=2, seed=0, batch_budget=3)
    assert torch.equal(a, again)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert not torch.allclose(a, run_level_plan(den, plan, schedule, (3, 8, 8), num_videos=2, seed=1))


def x0_copying_history(x, t, clean, frame_idx, videos):
    """An x0-model of clips whose frames all equal one value: with clean history it predicts the history's mean,
    without it the data mean MU."""
    w = clean.to(x.dtype).reshape(*clean.shape, *([1] * (x.ndim - 2)))
    has = clean.any(dim=1).reshape(-1, *([1] * (x.ndim - 1)))
    mean = (x * w).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp(min=1)
    return torch.where(has, mean, torch.full_like(mean, MU)).expand_as(x).clone()


@pytest.mark.parametrize("scale", [0.0, 1.0, 2.5])
def test_vanilla_history_guidance_is_uncond_plus_s_times_cond_minus_uncond(scale):
    """Each frame ends at its last guided x0-prediction, MU + s * (history mean - MU) (s = 0: history dropped,
    s = 1: plain conditioning). Frame 2's history is the two given frames (value h); frame 3 finishes one step
    later, when frame 2 is clean history too."""
    h = -0.3
    plan = level_plan("df-pyramid", 8, 4, 5, 1000, chunk=2, given=2)
    calls: list[dict] = []

    def den(x, t, clean, frame_idx, videos):
        calls.append(dict(t=t.clone(), clean=clean.clone()))
        return x0_copying_history(x, t, clean, frame_idx, videos)

    out = run_level_plan(den, plan, SCHEDULE, (4,), prediction="x0", given=torch.full((1, 2, 4), h),
                         history_guidance=scale)
    h2 = MU + scale * (h - MU)
    h3 = MU + scale * ((2 * h + h2) / 3 - MU)
    torch.testing.assert_close(out[0, 2:4], torch.tensor([[h2] * 4, [h3] * 4]), atol=1e-5, rtol=0)
    if scale == 1.0:
        assert len(calls) == plan.evaluations
    else:
        assert len(calls) == 2 * plan.evaluations  # every window holds history here
        dropped = calls[1]
        assert not dropped["clean"].any() and dropped["t"][0, :2].tolist() == [999, 999]


def test_fractional_history_guidance_noises_the_history_to_its_level():
    plan = level_plan("df-pyramid", 6, 4, 3, 1000, chunk=2, given=2)
    calls: list[dict] = []
    run_level_plan(_recording(calls), plan, SCHEDULE, (3,), given=torch.zeros(1, 2, 3), history_guidance=2.0,
                   history_guidance_level=300)
    cond, uncond = calls[0], calls[1]
    assert cond["clean"][0, :2].all() and cond["t"][0, :2].tolist() == [0, 0]
    assert not uncond["clean"].any() and uncond["t"][0, :2].tolist() == [300, 300]
    assert uncond["x"][0, :2].abs().min() > 0  # noised history, not the clean zeros


def test_bad_executor_arguments_name_the_argument():
    plan = level_plan("fifo", 6, 4, None, 1000)
    with pytest.raises(ValueError, match="given"):
        run_level_plan(exact_eps, plan, SCHEDULE, (2,), given=torch.zeros(1, 1, 2))
    with pytest.raises(ValueError, match="history_guidance_level"):
        run_level_plan(exact_eps, plan, SCHEDULE, (2,), history_guidance_level=1000)
    with pytest.raises(ValueError, match="batch_budget"):
        run_level_plan(exact_eps, plan, SCHEDULE, (2,), batch_budget=0)
    assert CLEAN == -1
