"""Every file vidiff writes gets the umask's permissions (0644 under the usual 022), not mkstemp's 0600:
checkpoints, autoencoder weights, `vidiff scheme --png`, the video index."""

import os
import stat

import pytest
import torch

from vidiff.cli import main


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield 0o644
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_checkpoints_honour_the_umask(tmp_path, umask_022):
    from vidiff.lit.checkpoint import AtomicCheckpointIO

    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "last.ckpt")
    assert _mode(tmp_path / "last.ckpt") == umask_022
    os.umask(0o077)  # a private umask is honoured too
    AtomicCheckpointIO().save_checkpoint({"state_dict": {}}, tmp_path / "private.ckpt")
    assert _mode(tmp_path / "private.ckpt") == 0o600


def test_autoencoder_weights_honour_the_umask(tmp_path, umask_022):
    from vidiff.nn.autoencoder import AutoencoderKL, save_autoencoder

    model = AutoencoderKL(ch=8, ch_mult=(1,), num_res_blocks=1, z_channels=2, embed_dim=2, norm_groups=4)
    assert _mode(save_autoencoder(model, tmp_path / "ae.safetensors")) == umask_022
    assert [p.name for p in tmp_path.iterdir()] == ["ae.safetensors"]


def test_scheme_png_honours_the_umask(tmp_path, umask_022, capsys):
    assert main(["scheme", "--name", "hierarchy-2", "--length", "40", "--max-frames", "8", "--png",
                 str(tmp_path / "plan.png")]) == 0
    assert _mode(tmp_path / "plan.png") == umask_022


def test_video_index_honours_the_umask(tmp_path, umask_022):
    from vidiff.data.video_index import _save

    _save(tmp_path / "index.json", tmp_path, [])
    assert _mode(tmp_path / "index.json") == umask_022
    assert [p.name for p in tmp_path.iterdir()] == ["index.json"]
