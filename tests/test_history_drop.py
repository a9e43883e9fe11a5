"""History dropout in training (``VideoDiffusion(history_drop=p)``) and min-SNR weighting per frame."""

from __future__ import annotations

import copy

import pytest
import torch
from lit_helpers import TINY_NET, tiny_batch
from torch import nn

from vidiff.diffusion import NoiseSchedule
from vidiff.diffusion.loss import diffusion_loss
from vidiff.diffusion.timesteps import draw_timesteps
from vidiff.lit import VideoDiffusion
from vidiff.pipelines.denoiser import history_guided


class _Spy(nn.Module):
    """Records what the net is shown; predicts ``w * x``."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.calls = []

    def forward(self, x, t, frame_idx, observed, context=None):
        self.calls.append((x.clone(), t.clone(), observed.clone()))
        return self.w * x


def _model(net, **kwargs) -> VideoDiffusion:
    return VideoDiffusion(net=net, image_size=8, max_frames=4, num_timesteps=100, ema_decay=None, **kwargs)


def test_without_history_drop_the_loss_is_the_shared_timestep_loss_of_before_bitwise():
    """p = 0 draws nothing more: the loss is the one the pre-dropout recipe gives for the same seed."""
    batch = tiny_batch()
    model = _model(copy.deepcopy(TINY_NET), history_drop=0.0)
    g = torch.Generator().manual_seed(7)
    loss = model.loss(batch, model.net, generator=g, history_drop=model.history_drop)
    g = torch.Generator().manual_seed(7)  # the recipe of VideoDiffusion.loss before history dropout
    x0, observed, valid = batch["video"], batch["observed"], batch["valid"]
    t = draw_timesteps("uniform", 2, 100, x0.device, g, 0.0, 1.0)
    noise = torch.randn(x0.shape, generator=g)
    x_in = torch.where(observed[:, :, None, None, None], x0, model.schedule.q_sample(x0, t, noise))
    pred = model.net(x_in, t, batch["frame_idx"], observed, None)
    weight = (valid & ~observed)[:, :, None, None, None]
    ref = diffusion_loss(pred, x0, noise, t, model.schedule, "eps", weight)
    assert torch.equal(loss, ref)


def test_dropped_history_is_shown_as_history_guidance_shows_it_and_left_out_of_the_loss():
    spy = _Spy()
    model = _model(spy, history_drop=1.0)
    batch = tiny_batch()  # sample 0 observes frame 0
    g = torch.Generator().manual_seed(0)
    loss = model.loss(batch, spy, generator=g, history_drop=model.history_drop)
    x, t, shown = spy.calls[-1]
    assert not bool(shown.any()), "dropped frames are not marked observed"
    assert t.shape == (2, 4) and int(t[0, 0]) == 99 and bool((t[0, 1:] == t[0, 1]).all())
    g = torch.Generator().manual_seed(0)  # the same draws: timesteps, then the noise
    draw_timesteps("uniform", 2, 100, "cpu", g, 0.0, 1.0)
    noise = torch.randn(batch["video"].shape, generator=g)
    assert torch.equal(x[0, 0], noise[0, 0]), "the dropped frame is its pure noise"
    # history guidance's unconditional branch at sampling shows the same frame the same way
    calls = []

    def net(xx, tt, fidx, obs, ctx):
        calls.append((xx, tt, obs))
        return xx

    guided = history_guided(net, batch["frame_idx"][:1], batch["observed"][:1], 99, 2.0, noise[:1])
    guided(x[:1].clone(), t[:1, 1].clone(), None)
    xs, ts, obs = calls[0]
    assert torch.equal(xs[1], x[0]) and torch.equal(ts[1], t[0]) and torch.equal(obs[1], shown[0])
    # the loss ignores the dropped slot: a net wrong only there gives the same loss
    class Wrong(_Spy):
        def forward(self, x, t, frame_idx, observed, context=None):
            out = self.w * x
            out[0, 0] += 100.0
            return out

    wrong = Wrong()
    g = torch.Generator().manual_seed(0)
    assert torch.equal(model.loss(batch, wrong, generator=g, history_drop=1.0), loss)
    model.loss(batch, spy, generator=torch.Generator().manual_seed(0))  # validation and test: no dropout
    assert torch.equal(spy.calls[-1][2], batch["observed"])


def test_history_drop_share_and_bad_values():
    spy = _Spy()
    model = _model(spy, history_drop=0.5)
    batch = tiny_batch(b=64)
    batch["observed"][:, 0] = True
    model.loss(batch, spy, generator=torch.Generator().manual_seed(1), history_drop=model.history_drop)
    _, t, shown = spy.calls[-1]
    dropped = ~shown[:, 0]
    assert 16 < int(dropped.sum()) < 48 and bool((t[dropped, 0] == 99).all())
    with pytest.raises(ValueError, match="history_drop: expected a probability in \\[0, 1\\], got 1.5"):
        _model(copy.deepcopy(TINY_NET), history_drop=1.5)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_min_snr_weighting_is_per_frame_with_per_frame_timesteps(prediction):
    """Closed form: loss = mean over frames of min(snr_f, g) / {snr_f, 1, snr_f + 1} * mse_f."""
    schedule, gamma = NoiseSchedule("linear", 100), 5.0
    x0, noise, pred = torch.randn(2, 3, 1, 4, 4), torch.randn(2, 3, 1, 4, 4), torch.randn(2, 3, 1, 4, 4)
    t = torch.tensor([[0, 40, 99], [5, 5, 70]])
    loss = diffusion_loss(pred, x0, noise, t, schedule, prediction, min_snr_gamma=gamma)
    ref = 0.0
    for b in range(2):
        for f in range(3):
            tf = t[b, f : f + 1]
            target = schedule.get_target(x0[b:b + 1, f], noise[b:b + 1, f], tf, prediction)
            snr = float(schedule.alphas_cumprod[tf] / (1 - schedule.alphas_cumprod[tf]))
            den = {"eps": snr, "x0": 1.0, "v": snr + 1}[prediction]
            ref += min(snr, gamma) / den * float(((pred[b, f] - target[0]) ** 2).mean())
    torch.testing.assert_close(loss, torch.tensor(ref / 6), rtol=1e-5, atol=0)
