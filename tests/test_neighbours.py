"""Nearest observed frames as input channels (vidiff.nn.neighbours) and the U-Net's `nearest_observed` option."""

from __future__ import annotations

import math

import pytest
import torch

from vidiff.nn.neighbours import nearest_observed, neighbour_channels
from vidiff.nn.unet import SpaceTimeUNet, is_temporal_name


def _net(**kw) -> SpaceTimeUNet:
    torch.manual_seed(0)
    return SpaceTimeUNet(3, model_channels=8, channel_mult=[1, 2], num_res_blocks=1, attention_resolutions=[2],
                         num_heads=2, norm_groups=4, **kw)


def test_each_frame_gets_its_nearest_observed_frames_with_presence_and_signed_distance():
    x = torch.arange(5.0)[None, :, None, None, None].expand(1, 5, 1, 2, 2).clone()  # frame j holds the value j
    idx = torch.tensor([[0, 3, 5, 9, 10]])
    obs = torch.tensor([[True, True, False, False, False]])
    f = nearest_observed(x, idx, obs, 2)
    assert f.shape == (1, 5, neighbour_channels(1, 2), 2, 2) == (1, 5, 6, 2, 2)
    # frame 4 (position 10): nearest observed are slot 1 (position 3, d = -7) then slot 0 (position 0, d = -10)
    assert f[0, 4, :, 0, 0].tolist() == pytest.approx([1.0, 1.0, -math.log1p(7) / 4, 0.0, 1.0, -math.log1p(10) / 4])
    # frame 0 is observed: its own frame first (d = 0), then position 3 (d = +3)
    assert f[0, 0, :, 0, 0].tolist() == pytest.approx([0.0, 1.0, 0.0, 1.0, 1.0, math.log1p(3) / 4])


def test_missing_neighbours_are_zero():
    x = torch.randn(2, 3, 3, 4, 4)
    obs = torch.tensor([[False, True, False], [False, False, False]])
    f = nearest_observed(x, torch.arange(3).repeat(2, 1), obs, 4)
    assert f.shape == (2, 3, 20, 4, 4)
    assert torch.equal(f[0, :, :3], x[0, 1].expand(3, 3, 4, 4))  # the one observed frame, first for every frame
    assert f[0, :, 5:].abs().sum() == 0  # no second observed frame
    assert f[1].abs().sum() == 0  # nothing observed


def test_zero_init_leaves_the_net_unchanged_and_it_counts_as_a_video_addition():
    plain, near = _net(), _net(nearest_observed=2)
    missing, unexpected = near.load_state_dict(plain.state_dict(), strict=False)
    assert set(missing) == {"neighbours_in.weight", "neighbours_in.bias"} and not unexpected
    assert all(is_temporal_name(n) for n in missing)
    x, t = torch.randn(2, 4, 3, 8, 8), torch.tensor([100, 900])
    idx, obs = torch.arange(4).repeat(2, 1), torch.tensor([[True, False, False, True], [True, False, False, False]])
    assert torch.equal(plain(x, t, idx, obs), near(x, t, idx, obs))


def test_latent_frames_depend_on_the_observed_pixels_through_it():
    net = _net(nearest_observed=1, temporal=False)  # no temporal attention: this is the only path between frames
    torch.nn.init.normal_(net.neighbours_in.weight, std=0.1)
    torch.nn.init.normal_(net.out[-1].weight, std=0.1)
    x, t = torch.randn(1, 3, 3, 8, 8), torch.tensor([500])
    idx, obs = torch.arange(3)[None], torch.tensor([[True, False, False]])
    changed = x.clone()
    changed[:, 0] += 1
    a, b = net(x, t, idx, obs), net(changed, t, idx, obs)
    assert not torch.allclose(a[:, 1:], b[:, 1:])
    assert torch.equal(_net(temporal=False)(x, t, idx, obs)[:, 1:], _net(temporal=False)(changed, t, idx, obs)[:, 1:])


def test_bad_value_is_named():
    with pytest.raises(ValueError, match="nearest_observed"):
        _net(nearest_observed=-1)
