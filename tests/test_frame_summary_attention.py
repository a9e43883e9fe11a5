"""Frame-summary attention (``FrameSummaryAttention``, ``summary_attention_resolutions``)."""

import pytest
import torch
from einops import rearrange

from vidiff.nn import SpaceTimeUNet
from vidiff.nn.embeddings import relative_frame_features
from vidiff.nn.transformer import FrameSummaryAttention
from vidiff.nn.unet import is_temporal_name

TINY = dict(
    in_channels=3, model_channels=8, channel_mult=[1, 2], num_res_blocks=1, attention_resolutions=[2],
    num_heads=2, norm_groups=4,
)


def _layer(seed: int = 0) -> FrameSummaryAttention:
    torch.manual_seed(seed)
    layer = FrameSummaryAttention(8, heads=2, dim_head=4)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.randn_like(p) * 0.3)  # to_out is zero-initialised: make the layer do something
    return layer.eval()


def _inputs(b=2, t=3, s=4):
    torch.manual_seed(1)
    x = torch.randn(b * t, 8, s, s)
    frame_idx = torch.tensor([[0, 2, 9], [4, 5, 30]])[:b, :t]
    return x, t, relative_frame_features(frame_idx)


def test_new_layer_is_the_identity():
    x, t, rel = _inputs()
    torch.testing.assert_close(FrameSummaryAttention(8, heads=2, dim_head=4)(x, t, rel), x)


def test_layer_is_attention_between_frame_means_added_to_every_pixel():
    layer, (x, t, rel) = _layer(), _inputs()
    z = rearrange(x.mean((2, 3)), "(b t) c -> b t c", t=t)
    q, k, v = rearrange(layer.to_qkv(layer.norm(z)), "b l (three n d) -> three b n l d", three=3, n=2)
    logits = q @ k.transpose(-1, -2) / 2.0 + layer.rel_pos(rel)
    out = layer.to_out(rearrange(logits.softmax(-1) @ v, "b n l d -> b l (n d)"))
    expected = x + rearrange(out, "b t c -> (b t) c 1 1")
    torch.testing.assert_close(layer(x, t, rel), expected, atol=1e-5, rtol=1e-5)


def test_what_a_frame_contains_reaches_every_pixel_of_the_other_frames_wherever_it_is():
    layer, (x, t, rel) = _layer(), _inputs()
    changed = []
    for i, j in ((0, 0), (3, 1)):  # the same content change at two different pixels of frame 0
        x2 = x.clone()
        x2[0, :, i, j] += torch.arange(8.0) - 3.5
        changed.append(layer(x2, t, rel) - layer(x, t, rel))
    for diff in changed:
        assert diff[1].abs().amin() > 1e-4  # every pixel of frame 1 sees it
        torch.testing.assert_close(diff[3:], torch.zeros_like(diff[3:]))  # never another video
    torch.testing.assert_close(changed[0][1:3], changed[1][1:3])  # and only through the frame's mean


def test_unet_option_adds_temporal_parameters_and_stays_frame_permutation_equivariant():
    plain = SpaceTimeUNet(**TINY)
    net = SpaceTimeUNet(**TINY, summary_attention_resolutions=[2])
    added = net.state_dict().keys() - plain.state_dict().keys()
    assert added and all("temporal_summary" in k and is_temporal_name(k) for k in added)
    assert plain.state_dict().keys() <= net.state_dict().keys()  # old checkpoints keep their names
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    net.eval()
    x, ts = torch.randn(2, 4, 3, 8, 8), torch.tensor([10, 400])
    frame_idx = torch.tensor([[0, 1, 5, 300], [3, 9, 10, 40]])
    observed = torch.tensor([[True, False, False, True], [False, True, False, False]])
    ref = net(x, ts, frame_idx, observed)
    perm = torch.tensor([2, 0, 3, 1])
    out = net(x[:, perm], ts, frame_idx[:, perm], observed[:, perm])
    torch.testing.assert_close(out, ref[:, perm], atol=1e-5, rtol=1e-5)


def test_summary_resolutions_need_temporal_layers():
    with pytest.raises(ValueError, match="summary_attention_resolutions: needs temporal=True"):
        SpaceTimeUNet(**TINY, temporal=False, summary_attention_resolutions=[1])
