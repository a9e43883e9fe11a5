"""VideoDiffusion and EMA: frame masks in the loss, EMA closed forms, hparams, load_model round trip."""

from __future__ import annotations

import copy

import pytest
import torch
from lit_helpers import TINY_NET, tiny_batch
from torch import nn

from vidiff.lit import EMA, VideoDiffusion, load_model
from vidiff.lit.checkpoint import atomic_torch_save


class SpyNet(nn.Module):
    """Records what the module feeds the net; predicts ``w * x``."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.calls: list[tuple] = []

    def forward(self, x, t, frame_idx, observed, context=None):
        self.calls.append((x.detach().clone(), t.clone(), frame_idx.clone(), observed.clone(), context))
        return self.w * x


def _model(net=None, **kwargs) -> VideoDiffusion:
    kwargs.setdefault("image_size", 8)
    kwargs.setdefault("max_frames", 4)
    kwargs.setdefault("num_timesteps", 100)
    return VideoDiffusion(net=net if net is not None else copy.deepcopy(TINY_NET), **kwargs)


def test_loss_noises_latent_frames_only_and_scores_latent_valid_frames():
    spy = SpyNet()
    model = _model(spy, ema_decay=None)
    batch = tiny_batch()
    loss = model.loss(batch, model.net)
    x_in, _, frame_idx, observed, _ = spy.calls[-1]
    assert torch.equal(observed, batch["observed"]) and torch.equal(frame_idx, batch["frame_idx"])
    assert torch.equal(x_in[0, 0], batch["video"][0, 0])  # observed frame passed clean
    latent = ~batch["observed"]
    assert not torch.isclose(x_in[latent], batch["video"][latent]).all()  # latent frames noised
    # only latent & valid frames carry gradient to the prediction
    pred = torch.zeros_like(batch["video"], requires_grad=True)
    spy.forward = lambda *a, **k: pred
    model.loss(batch, model.net).backward()
    per_frame = pred.grad.abs().flatten(2).sum(-1)
    scored = batch["valid"] & ~batch["observed"]
    assert (per_frame[scored] > 0).all() and (per_frame[~scored] == 0).all()
    assert torch.isfinite(loss)


def test_cond_dropout_replaces_context_with_null_embedding():
    from vidiff.nn.text import BuiltinTextEncoder

    model = _model(
        SpyNet(), ema_decay=None, text_encoder=BuiltinTextEncoder(dim=8, depth=1, heads=2, max_length=6)
    )
    captions = ["a red circle", "a blue square"]
    null = model.text_encoder.null_embedding(2)
    full = model.context(captions, 2, drop_prob=1.0)
    none = model.context(captions, 2, drop_prob=0.0)
    assert torch.equal(full, null) and not torch.equal(none, null)


def test_ema_matches_closed_form():
    net = nn.Linear(2, 1)
    ema = EMA(net, decay=0.9, warmup=False)
    p0 = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)
    torch.testing.assert_close(ema.shadow.weight, 0.9 * p0 + 0.1 * (p0 + 1.0))
    warm = EMA(net, decay=0.999, warmup=True)
    decays = []
    for _ in range(3):
        decays.append(warm.current_decay())
        warm.update(net)
    assert decays == pytest.approx([1 / 10, 2 / 11, 3 / 12]) and int(warm.num_updates) == 3
    with pytest.raises(ValueError, match="ema_decay"):
        EMA(net, decay=1.0)


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"image_size": -1}, "image_size"),
        ({"max_frames": 0}, "max_frames"),
        ({"prediction": "eps2"}, "prediction"),
        ({"on_nonfinite": "ignore"}, "on_nonfinite"),
        ({"cond_drop_prob": 1.5}, "cond_drop_prob"),
        ({"net": {"class_path": "torch.optim.AdamW"}}, "net"),
    ],
)
def test_bad_values_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        _model(**kwargs)


def test_hparams_are_plain_and_net_object_is_recorded_by_config():
    from vidiff.nn.unet import SpaceTimeUNet

    net = SpaceTimeUNet(**TINY_NET["init_args"])
    model = _model(net, optimizer=torch.optim.SGD)
    assert model.hparams["net"]["class_path"].endswith("SpaceTimeUNet")
    assert model.hparams["net"]["init_args"]["model_channels"] == 8
    assert "optimizer" not in model.hparams  # a class object is not plain data


def test_load_model_roundtrip_applies_ema(tmp_path):
    model = _model(ema_decay=0.5)
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(0.1)
    model.ema.update(model._trained())
    ckpt = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    path = atomic_torch_save(ckpt, tmp_path / "m.ckpt")
    loaded = load_model(path)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    for (name, p), q in zip(loaded.net.named_parameters(), model.ema.shadow["net"].parameters()):
        torch.testing.assert_close(p, q, msg=name)
    assert (loaded.image_size, loaded.channels, loaded.max_frames, loaded.prediction) == (8, 3, 4, "eps")
    assert loaded.autoencoder is None and loaded.text_encoder is None
    raw = load_model(path, use_ema=False)
    for p, q in zip(raw.net.parameters(), model.net.parameters()):
        torch.testing.assert_close(p, q)


def test_missing_ema_state_is_an_error(tmp_path):
    model = _model()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("ema.")}
    path = atomic_torch_save(
        {"state_dict": state, "hyper_parameters": dict(model.hparams)}, tmp_path / "m.ckpt"
    )
    with pytest.raises(RuntimeError, match="no EMA state"):
        load_model(path)
    with pytest.raises(FileNotFoundError, match="ckpt_path"):
        load_model(tmp_path / "missing.ckpt")


def test_generate_keeps_observed_frames_and_is_seeded():
    model = _model().eval()
    batch = tiny_batch()
    a = model.generate(batch, steps=2, seed=3)
    b = model.generate(batch, steps=2, seed=3)
    assert a.shape == batch["video"].shape and torch.equal(a, b)
    torch.testing.assert_close(a[0, 0], batch["video"][0, 0].clamp(-1, 1))
    assert a.abs().max() <= 1


def test_atomic_save_leaves_old_file_on_crash(tmp_path, monkeypatch):
    path = atomic_torch_save({"x": torch.ones(3)}, tmp_path / "last.ckpt")
    before = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_torch_save({"x": torch.zeros(3)}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temporary left behind
