"""Validation samples are labelled: each frame shows "real" and "model" side by side with its frame number,
observed frames framed in orange, in the mp4 and in the TensorBoard image."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from pytorch_lightning.loggers import TensorBoardLogger

from vidiff.io import GIVEN_RGB, compare_frames, read_video
from vidiff.lit.callbacks import SampleVideos


def _batch():
    g = torch.Generator().manual_seed(0)
    video = torch.rand(2, 6, 3, 8, 8, generator=g) * 2 - 1
    return {"video": video, "frame_idx": torch.tensor([[5, 0, 1, 9, 20, 30]] * 2),
            "observed": torch.tensor([[False, True, True, False, False, False]] * 2),
            "valid": torch.tensor([[True] * 5 + [False]] * 2), "caption": ["", ""]}


def _orange(tile):
    return np.all(np.abs(tile.astype(int) - GIVEN_RGB) < 40, axis=-1).mean()


def test_compare_frames_labels_and_frames_observed_ones():
    real, fake = -torch.ones(2, 3, 8, 8), torch.zeros(2, 3, 8, 8)  # black, grey
    tiles = compare_frames(real, fake, [True, False], [0, 7])
    t, h, w, _ = tiles.shape
    assert t == 2 and h % 2 == 0 and w % 2 == 0 and w > 2 * 64 and h > 64  # enlarged to >= 64 px, with text
    assert _orange(tiles[0]) > 0.05 and _orange(tiles[1]) == 0
    left, right = tiles[1][:, : w // 2], tiles[1][:, w // 2:]
    assert (left == 0).all(-1).sum() >= 64 * 64 and (right == 128).all(-1).sum() == 64 * 64  # real | model


def test_sample_videos_writes_labelled_mp4_and_tensorboard_image(tmp_path):
    batch = _batch()
    callback = SampleVideos(num_videos=2, steps=1)
    module = SimpleNamespace(generate=lambda b, **kw: b["video"] * 0.5, device=torch.device("cpu"))
    logger = TensorBoardLogger(str(tmp_path / "tb"))
    images = []
    logger._experiment = SimpleNamespace(add_image=lambda tag, img, step, dataformats: images.append(
        (tag, img, dataformats)))
    trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True, default_root_dir=str(tmp_path),
                              loggers=[logger], global_step=3, state=SimpleNamespace(fn="fit"), ckpt_path=None)
    callback.on_validation_batch_end(trainer, module, None, batch, 0)
    callback.on_validation_epoch_end(trainer, module)
    folder = Path(tmp_path / "samples" / "step_000003")
    assert sorted(p.name for p in folder.iterdir()) == ["sample_00.mp4", "sample_01.mp4"]
    frames = read_video(folder / "sample_00.mp4")  # 5 valid frames in frame order: 0, 1 (observed), 5, 9, 20
    expected = compare_frames(batch["video"][0][[1, 2, 0, 3, 4]], batch["video"][0][[1, 2, 0, 3, 4]] * 0.5,
                              [True, True, False, False, False], [0, 1, 5, 9, 20])
    assert frames.shape[0] == 5 and tuple(frames.shape[2:]) == expected.shape[1:3]
    assert [tag for tag, _, _ in images] == ["samples/00", "samples/01"]
    tag, grid, fmt = images[0]
    assert fmt == "HWC" and grid.dtype == np.uint8 and _orange(grid) > 0.01
