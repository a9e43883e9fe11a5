"""Joint space-time attention (``TemporalAttention(joint=True)``, ``spacetime_attention_resolutions``)."""

import pytest
import torch
from einops import rearrange

from vidiff.nn import SpaceTimeUNet
from vidiff.nn.embeddings import relative_frame_features
from vidiff.nn.transformer import TemporalAttention

TINY = dict(
    in_channels=3, model_channels=8, channel_mult=[1, 2], num_res_blocks=1, attention_resolutions=[2],
    num_heads=2, norm_groups=4,
)


def _layer(joint: bool, seed: int = 0) -> TemporalAttention:
    torch.manual_seed(seed)
    layer = TemporalAttention(8, heads=2, dim_head=4, joint=joint)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.randn_like(p) * 0.3)  # to_out is zero-initialised: make the layer do something
    return layer.eval()


def _inputs(b=2, t=3, s=4):
    torch.manual_seed(1)
    x = torch.randn(b * t, 8, s, s)
    frame_idx = torch.tensor([[0, 2, 9], [4, 5, 30]])[:b, :t]
    return x, t, relative_frame_features(frame_idx)


def test_joint_layer_is_attention_over_all_pixels_of_all_frames():
    layer, (x, t, rel) = _layer(joint=True), _inputs()
    _, _, h, w = x.shape
    z = rearrange(x, "(b t) c h w -> b (t h w) c", t=t)
    q, k, v = rearrange(layer.to_qkv(layer.norm(z)), "b l (three n d) -> three b n l d", three=3, n=2)
    bias = layer.rel_pos(rel)  # (b, heads, t, t)
    frame_of = torch.arange(t).repeat_interleave(h * w)  # token -> frame
    logits = q @ k.transpose(-1, -2) / 2.0 + bias[:, :, frame_of][:, :, :, frame_of]
    out = layer.to_out(rearrange(logits.softmax(-1) @ v, "b n l d -> b l (n d)"))
    expected = x + rearrange(out, "b (t h w) c -> (b t) c h w", t=t, h=h, w=w)
    torch.testing.assert_close(layer(x, t, rel), expected, atol=1e-5, rtol=1e-5)


def test_only_joint_attention_moves_information_between_pixels():
    (x, t, rel) = _inputs()
    x2 = x.clone()
    x2[0, :, 0, 0] += torch.randn(8)  # video 0, frame 0, one pixel (not a constant: LayerNorm removes those)
    for joint in (False, True):
        layer = _layer(joint)
        diff = (layer(x2, t, rel) - layer(x, t, rel))[1].abs()  # video 0, frame 1
        elsewhere = diff.clone()
        elsewhere[:, 0, 0] = 0
        assert diff[:, 0, 0].max() > 1e-3  # the same pixel of another frame sees it in both modes
        assert (elsewhere.max() > 1e-3) == joint  # other pixels only with joint attention
        torch.testing.assert_close(layer(x2, t, rel)[3:], layer(x, t, rel)[3:])  # never another video


def test_unet_modes_share_parameters_and_stay_frame_permutation_equivariant():
    per_pixel = SpaceTimeUNet(**TINY)
    joint = SpaceTimeUNet(**TINY, spacetime_attention_resolutions=[2])
    assert per_pixel.state_dict().keys() == joint.state_dict().keys()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in joint.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    joint.eval()
    per_pixel.load_state_dict(joint.state_dict())
    x, ts = torch.randn(2, 4, 3, 8, 8), torch.tensor([10, 400])
    frame_idx = torch.tensor([[0, 1, 5, 300], [3, 9, 10, 40]])
    observed = torch.tensor([[True, False, False, True], [False, True, False, False]])
    ref = joint(x, ts, frame_idx, observed)
    assert (ref - per_pixel(x, ts, frame_idx, observed)).abs().max() > 1e-4
    perm = torch.tensor([2, 0, 3, 1])
    out = joint(x[:, perm], ts, frame_idx[:, perm], observed[:, perm])
    torch.testing.assert_close(out, ref[:, perm], atol=1e-5, rtol=1e-5)


def test_spacetime_resolutions_must_have_temporal_attention():
    with pytest.raises(ValueError, match="spacetime_attention_resolutions: expected a subset"):
        SpaceTimeUNet(**TINY, temporal_attention_resolutions=[1], spacetime_attention_resolutions=[2])
    with pytest.raises(ValueError, match="spacetime_attention_resolutions"):
        SpaceTimeUNet(**TINY, temporal=False, spacetime_attention_resolutions=[1])
