"""Validation samples during fit and `vidiff sample` walk one path (vidiff.pipelines): same checkpoint, clip, seed
and settings give identical frames."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import torch

import vidiff.io
from vidiff.assets import REFERENCE
from vidiff.commands import sample as cmd
from vidiff.io import read_video, write_video
from vidiff.lit import load_model
from vidiff.lit.callbacks import SampleVideos


def test_validation_samples_equal_vidiff_sample(tmp_path, monkeypatch):
    clip = torch.linspace(-0.8, 0.8, 8)[:, None, None, None] * torch.ones(8, 3, 32, 32)
    clip[:, 0, 8:20, 8:20] = 0.9  # a square, so the frames are not flat
    write_video(tmp_path / "clip.mp4", clip, fps=8)
    given = read_video(tmp_path / "clip.mp4", num_frames=4, size=(32, 32))  # what `vidiff sample` reads

    written = []
    real_write = vidiff.io.write_video
    monkeypatch.setattr(vidiff.io, "write_video", lambda path, video, **kw: (written.append(video.clone()),
                                                                             real_write(path, video, **kw)))
    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    args = parser.parse_args(["--ckpt", str(REFERENCE), "--observed", str(tmp_path / "clip.mp4"), "--num-observed",
                              "4", "--length", "8", "--scheme", "hierarchy-2", "--steps", "3", "--seed", "5",
                              "--num-videos", "1", "--out", str(tmp_path / "out"), "--no-progress"])
    cmd.sample_to_folder(args)
    (sampled,) = written

    module = load_model(REFERENCE)
    callback = SampleVideos(num_videos=1, steps=3, seed=5)
    batch = {"video": torch.cat([given, torch.zeros(4, 3, 32, 32)])[None], "frame_idx": torch.arange(8)[None],
             "observed": (torch.arange(8) < 4)[None], "valid": torch.ones(1, 8, dtype=torch.bool), "caption": [""]}
    trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True, default_root_dir=str(tmp_path / "run"),
                              loggers=[], global_step=0, state=SimpleNamespace(fn="fit"), ckpt_path=None)
    captured = []
    monkeypatch.setattr(callback, "write", lambda root, step, b, fake: captured.append(fake) or Path(root))
    callback.on_validation_batch_end(trainer, module, None, batch, 0)
    callback.on_validation_epoch_end(trainer, module)
    (fake,) = captured
    assert fake.shape == (1, 8, 3, 32, 32)
    assert torch.equal(fake[0, :4], given) and torch.equal(sampled[:4], given)
    assert torch.equal(fake[0], sampled)
