"""Per-frame timesteps (Diffusion Forcing's generalisation of FDM masks): net, schedule, loss and training."""

from __future__ import annotations

import copy

import pytest
import torch
from lit_helpers import TINY_NET, tiny_batch
from torch import nn

from vidiff.diffusion import NoiseSchedule
from vidiff.diffusion.loss import diffusion_loss
from vidiff.lit import VideoDiffusion
from vidiff.nn import SpaceTimeUNet

NET = dict(in_channels=3, model_channels=8, channel_mult=[1, 2], num_res_blocks=1, attention_resolutions=[2],
           num_heads=2, norm_groups=4)


def _net(**kwargs) -> SpaceTimeUNet:
    torch.manual_seed(0)
    net = SpaceTimeUNet(**{**NET, **kwargs}).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return net


def test_equal_per_frame_timesteps_are_the_shared_timestep_bitwise():
    net, x = _net(), torch.randn(2, 4, 3, 8, 8)
    t = torch.tensor([10, 700])
    observed = torch.tensor([[True, False, False, False], [False, False, True, False]])
    shared = net(x, t, None, observed)
    assert torch.equal(net(x, t[:, None].expand(2, 4), None, observed), shared)


def test_each_frame_is_denoised_at_its_own_timestep():
    net, x = _net(temporal=False, observed_channel=False), torch.randn(1, 3, 3, 8, 8)
    t = torch.tensor([[5, 400, 999]])
    out = net(x, t)
    for i in range(3):
        torch.testing.assert_close(out[:, i], net(x[:, i], t[:, i]))
    with pytest.raises(ValueError, match=r"\(b, t\) = \(1, 3\)"):
        net(x, torch.tensor([[1, 2]]))


def test_schedule_and_loss_take_per_frame_timesteps():
    schedule = NoiseSchedule("cosine", 100)
    x0, noise = torch.randn(2, 3, 1, 4, 4), torch.randn(2, 3, 1, 4, 4)
    t = torch.tensor([[0, 50, 99], [10, 10, 60]])
    xt = schedule.q_sample(x0, t, noise)
    for b in range(2):
        for i in range(3):
            ti = int(t[b, i])
            ref = schedule.at("sqrt_alphas_cumprod", ti, x0) * x0[b, i] + schedule.at(
                "sqrt_one_minus_alphas_cumprod", ti, x0) * noise[b, i]
            torch.testing.assert_close(xt[b, i], ref)
    pred = torch.randn_like(x0)
    loss = diffusion_loss(pred, x0, noise, t, schedule, "v")
    target = torch.stack([torch.stack([schedule.get_v(x0[b, i:i + 1], noise[b, i:i + 1], t[b, i:i + 1])[0]
                                       for i in range(3)]) for b in range(2)])
    torch.testing.assert_close(loss, ((pred - target) ** 2).mean())
    with pytest.raises(ValueError, match="leading shape of x"):
        schedule.q_sample(x0, torch.tensor([[1, 2]]), noise)


class _Spy(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.t = []

    def forward(self, x, t, frame_idx, observed, context=None):
        self.t.append(t.clone())
        return self.w * x


def test_frame_noise_draws_one_timestep_per_frame_for_that_share_of_samples():
    spy = _Spy()
    model = VideoDiffusion(net=spy, image_size=8, max_frames=4, num_timesteps=100, ema_decay=None, frame_noise=1.0)
    batch = tiny_batch()
    model.loss(batch, spy, generator=torch.Generator().manual_seed(0))
    t = spy.t[-1]
    assert t.shape == batch["observed"].shape and bool((t != t[:, :1]).any()), "frames get their own levels"
    shared = VideoDiffusion(net=copy.deepcopy(TINY_NET), image_size=8, max_frames=4, num_timesteps=100)
    default = VideoDiffusion(net=copy.deepcopy(TINY_NET), image_size=8, max_frames=4, num_timesteps=100,
                             frame_noise=0.0)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(shared.loss(batch, shared.net, generator=g1), default.loss(batch, default.net, generator=g2))
    with pytest.raises(ValueError, match="frame_noise"):
        VideoDiffusion(net=copy.deepcopy(TINY_NET), frame_noise=1.5)
