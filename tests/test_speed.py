"""Sampling-speed levers (vidiff.pipelines.speed): each one's numbers against the plain net, its switch, and the
paths that must keep working (gradients for reconstruction guidance, in-place updates, the CLI options)."""

from __future__ import annotations

import argparse

import pytest
import torch

import vidiff
from vidiff.assets import REFERENCE
from vidiff.commands.options import add_speed_arguments, speed_of
from vidiff.nn import SpaceTimeUNet
from vidiff.pipelines import Speed, VideoModel, accelerate
from vidiff.pipelines.speed import FastNet


def tiny_net() -> SpaceTimeUNet:
    torch.manual_seed(0)
    net = SpaceTimeUNet(in_channels=3, model_channels=8, channel_mult=(1, 2), num_res_blocks=1,
                        attention_resolutions=(2,), temporal_attention_resolutions=(1, 2), num_heads=2,
                        norm_groups=4)
    for p in net.parameters():  # zero-initialised output layers would make every output 0
        p.data.normal_(0, 0.2)
    return net.eval().requires_grad_(False)


def inputs(b: int = 2, k: int = 4):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(b, k, 3, 16, 16, generator=g)
    t = torch.tensor([100, 900])[:b]
    frame_idx = torch.arange(k).expand(b, k)
    observed = torch.zeros(b, k, dtype=torch.bool)
    observed[:, 0] = True
    return x, t, frame_idx, observed


def model_of(net) -> VideoModel:
    return VideoModel(net=net, schedule=None, prediction="eps", frame_shape=(3, 16, 16), image_shape=(3, 16, 16))


def test_inference_mode_gives_the_same_numbers_and_a_normal_tensor():
    net = tiny_net()
    with torch.no_grad():
        plain = net(*inputs())
    fast = accelerate(model_of(net)).net
    assert isinstance(fast, FastNet) and fast.speed == Speed()
    with torch.no_grad():
        out = fast(*inputs())
    assert torch.equal(out, plain) and not out.is_inference()
    out.mul_(2)  # samplers update predictions in place outside inference mode


def test_every_lever_off_returns_the_model_unchanged():
    model = model_of(tiny_net())
    assert accelerate(model, Speed(inference=False)) is model
    analytic = model_of(lambda x, *args: x)  # not an nn.Module: nothing to accelerate
    assert accelerate(analytic, Speed(precision="bf16")) is analytic


@pytest.mark.parametrize("speed, atol", [(Speed(channels_last=True), 1e-5), (Speed(precision="bf16"), 0.1)])
def test_levers_that_change_the_arithmetic_stay_close(speed, atol):
    net = tiny_net()
    with torch.no_grad():
        plain = net(*inputs())
    out = FastNet(tiny_net(), speed)(*inputs())
    assert out.dtype == torch.float32 and out.shape == plain.shape
    err = (out - plain).abs().max().item()
    assert err <= atol * plain.abs().max().item(), err
    if speed.precision == "bf16":
        assert err > 0  # bf16 really ran


def test_gradients_still_flow_when_asked_for():
    """Reconstruction guidance differentiates through the net with gradients on: no inference mode then."""
    fast = FastNet(tiny_net(), Speed())
    x, *rest = inputs()
    x.requires_grad_(True)
    with torch.enable_grad():
        fast(x, *rest).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_compile_wraps_the_net_without_calling_it():
    fast = FastNet(tiny_net(), Speed(compile=True))
    assert type(fast._body).__name__ == "OptimizedModule" and fast.net is fast._body._orig_mod


def test_bad_settings_name_the_argument():
    with pytest.raises(ValueError, match=r"^precision: expected one of fp32, bf16, got 'fp16'"):
        Speed(precision="fp16")
    with pytest.raises(ValueError, match=r"^channels_last: the net has no channels_last option"):
        FastNet(torch.nn.Linear(2, 2), Speed(channels_last=True))


def test_cli_options_map_to_speed():
    parser = argparse.ArgumentParser()
    add_speed_arguments(parser)
    assert speed_of(parser.parse_args([])) == Speed()
    args = parser.parse_args(["--precision", "bf16", "--compile", "--channels-last", "--no-inference-mode"])
    assert speed_of(args) == Speed(precision="bf16", inference=False, channels_last=True, compile=True)


def test_pipeline_videos_are_equal_with_and_without_inference_mode():
    clip = torch.linspace(-1, 1, 4)[None, :, None, None, None].expand(1, 4, 3, 32, 32)
    kwargs = dict(length=10, given=clip, steps=2, seed=3, scheme="autoregressive")
    fast = vidiff.load(REFERENCE).generate(**kwargs)
    plain = vidiff.load(REFERENCE, speed=Speed(inference=False)).generate(**kwargs)
    assert torch.equal(fast, plain)
