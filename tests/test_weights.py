"""Weights files (vidiff.lit.weights, `vidiff export`): EMA net + settings in safetensors, loaded like checkpoints."""

from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import load_file, save_file
from lit_helpers import TINY_NET

from vidiff.cli import main
from vidiff.lit import VideoDiffusion, load_model
from vidiff.lit.checkpoint import atomic_torch_save
from vidiff.io.checkpoint import read_checkpoint
from vidiff.lit.weights import export_weights


def _checkpoint(tmp_path):
    model = VideoDiffusion(net=copy.deepcopy(TINY_NET), image_size=8, max_frames=4, num_timesteps=100, ema_decay=0.5)
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.ema.update(model._trained())
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(0.1)  # raw weights now differ from the EMA ones
    ckpt = {
        "state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams), "global_step": 1234,
        "datamodule_hyper_parameters": {"image_size": 8, "speed": (0.5, 2.0), "min_objects": 1},
    }
    return model, atomic_torch_save(ckpt, tmp_path / "m.ckpt")


def test_export_then_load_gives_the_ema_model_and_its_settings(tmp_path):
    model, ckpt = _checkpoint(tmp_path)
    out = export_weights(ckpt, tmp_path / "m.safetensors")
    assert not any(k.startswith("ema.") for k in load_file(str(out)))
    assert out.stat().st_size < 0.6 * ckpt.stat().st_size  # no raw copy, no optimizer
    from_ckpt, from_file = load_model(ckpt), load_model(out)
    for (name, p), q in zip(from_file.net.named_parameters(), model.ema.shadow["net"].parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=name)
    x, t = torch.randn(1, 4, 3, 8, 8), torch.tensor([50])
    torch.testing.assert_close(from_file.net(x, t), from_ckpt.net(x, t), rtol=0, atol=0)
    assert (from_file.prediction, from_file.max_frames, from_file.schedule.num_timesteps) == ("eps", 4, 100)
    meta = read_checkpoint(out)
    assert meta["global_step"] == 1234 and meta["datamodule_hyper_parameters"]["speed"] == [0.5, 2.0]


def test_raw_export_keeps_the_trained_weights(tmp_path):
    model, ckpt = _checkpoint(tmp_path)
    raw = load_model(export_weights(ckpt, tmp_path / "raw.safetensors", use_ema=False))
    for p, q in zip(raw.net.parameters(), model.net.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_foreign_safetensors_and_bad_paths_fail_in_one_line(tmp_path, capsys):
    foreign = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(ValueError, match="not vidiff weights.*vidiff export"):
        load_model(foreign)
    with pytest.raises(SystemExit, match="--ckpt: no checkpoint file"):
        main(["export", "--ckpt", str(tmp_path / "missing.ckpt"), "--out", str(tmp_path / "w.safetensors")])
    _, ckpt = _checkpoint(tmp_path)
    with pytest.raises(SystemExit, match="ends in .safetensors"):
        main(["export", "--ckpt", str(ckpt), "--out", str(tmp_path / "w.pt")])
    assert main(["export", "--ckpt", str(ckpt), "--out", str(tmp_path / "w.safetensors")]) == 0
    assert "wrote" in capsys.readouterr().out and not list(tmp_path.glob("*.tmp*"))


def test_demo_pretrained_without_the_reference_file_fails_in_one_line(tmp_path, monkeypatch):
    import vidiff.assets

    monkeypatch.setattr(vidiff.assets, "REFERENCE", tmp_path / "missing.safetensors")
    with pytest.raises(SystemExit, match="--pretrained: the reference model .* is missing"):
        main(["demo", "--pretrained", "--out", str(tmp_path / "demo")])


def test_checkpoints_get_the_permissions_of_every_other_output(tmp_path):
    import os
    import stat

    path = atomic_torch_save({"w": torch.zeros(1)}, tmp_path / "a.ckpt")
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, "not mkstemp's 0600"
    assert [p.name for p in tmp_path.iterdir()] == ["a.ckpt"]


def test_init_weights_starts_net_and_ema_from_the_sampling_weights(tmp_path):
    model, ckpt = _checkpoint(tmp_path)
    out = export_weights(ckpt, tmp_path / "m.safetensors")
    for source in (ckpt, out):
        tuned = VideoDiffusion(net=copy.deepcopy(TINY_NET), image_size=8, max_frames=4, num_timesteps=100,
                               init_weights=str(source))
        for p, q, e in zip(tuned.net.parameters(), model.ema.shadow["net"].parameters(),
                           tuned.ema.shadow["net"].parameters()):
            torch.testing.assert_close(p, q, rtol=0, atol=0)
            torch.testing.assert_close(e, q, rtol=0, atol=0)
        assert tuned.global_step == 0
    # the fine-tuned model's own checkpoint does not need the file it started from
    (tmp_path / "m.safetensors").unlink()
    tuned_ckpt = atomic_torch_save({"state_dict": tuned.state_dict(), "hyper_parameters": dict(tuned.hparams)},
                                   tmp_path / "tuned.ckpt")
    assert tuned.hparams["init_weights"] == str(out)
    load_model(tuned_ckpt)


def test_init_weights_of_another_net_fails_in_one_line(tmp_path):
    _, ckpt = _checkpoint(tmp_path)
    other = copy.deepcopy(TINY_NET)
    other["init_args"]["model_channels"] = 2 * other["init_args"]["model_channels"]
    with pytest.raises(ValueError, match="init_weights: .* holds a net of another shape") as err:
        VideoDiffusion(net=other, image_size=8, max_frames=4, num_timesteps=100,
                       init_weights=str(ckpt))
    assert "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError, match="init_weights: no checkpoint or weights file at"):
        VideoDiffusion(net=copy.deepcopy(TINY_NET), image_size=8, max_frames=4, init_weights=str(tmp_path / "none"))
