"""Video I/O: round trips, odd sizes, atomic writes, detection of broken encoders, gallery contents."""

import json

import numpy as np
import pytest
import torch

import vidiff.io.video as video_mod
from vidiff.io import (
    GalleryItem,
    count_frames,
    make_grid,
    read_video,
    to_uint8,
    write_gallery,
    write_gif,
    write_json_atomic,
    write_png_strip,
    write_video,
)


def _ramp(t=5, h=16, w=24):
    """A smooth float video (t, 3, h, w) in [-1, 1] that survives lossy coding closely."""
    y = torch.linspace(-0.8, 0.8, h)[:, None].expand(h, w)
    x = torch.linspace(-0.8, 0.8, w)[None, :].expand(h, w)
    frames = [torch.stack([y, x, torch.full_like(x, -0.8 + 1.6 * i / max(t - 1, 1))]) for i in range(t)]
    return torch.stack(frames)


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if ".tmp" in p.name]


def test_to_uint8_layouts_and_range():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).reshape(1, 1, 2, 2).expand(3, 3, 2, 2)
    u = to_uint8(x)
    assert u.shape == (3, 2, 2, 3) and u.dtype == np.uint8
    assert u[0, :, :, 0].tolist() == [[0, 128], [255, 255]]
    assert to_uint8(u).tolist() == u.tolist()  # uint8 (t h w c) passes through
    assert to_uint8(torch.zeros(2, 1, 4, 4)).shape == (2, 4, 4, 3)  # grey -> RGB
    with pytest.raises(ValueError, match="channels"):
        to_uint8(torch.zeros(2, 8, 4, 4))
    with pytest.raises(ValueError, match="NaN"):
        to_uint8(torch.full((1, 3, 2, 2), float("nan")))


@pytest.mark.parametrize("w", [24, 32])  # decord 0.6 mis-reads width 24 (row padding): fallback covers it
def test_mp4_round_trip_frame_count_and_content(tmp_path, w):
    video = _ramp(t=7, w=w)
    path = write_video(tmp_path / "a.mp4", video, fps=8, crf=0)
    assert path.stat().st_size > 0
    assert count_frames(path) == 7
    back = read_video(path)
    assert back.shape == (7, 3, 16, w)
    assert (back - video).abs().mean() < 0.05  # yuv420p chroma subsampling costs a little
    assert _leftovers(tmp_path) == []


def test_decord_reads_written_mp4(tmp_path):
    decord = pytest.importorskip("decord")
    write_video(tmp_path / "a.mp4", _ramp(t=9, h=32, w=32))
    assert len(decord.VideoReader(str(tmp_path / "a.mp4"))) == 9


def test_read_video_slices_and_resizes(tmp_path):
    path = write_video(tmp_path / "a.mp4", _ramp(t=6))
    part = read_video(path, num_frames=3, start=2, size=(8, 12))
    assert part.shape == (3, 3, 8, 12) and part.min() >= -1 and part.max() <= 1
    with pytest.raises(ValueError, match="num_frames"):
        read_video(path, num_frames=10)
    with pytest.raises(FileNotFoundError, match="path"):
        read_video(tmp_path / "missing.mp4")


def test_imageio_fallback_reader_agrees_with_decord(tmp_path):
    path = write_video(tmp_path / "a.mp4", _ramp(t=4))
    a = read_video(path, backend="decord")
    b = read_video(path, backend="imageio")
    assert a.shape == b.shape and (a - b).abs().max() < 0.05


def test_odd_sizes_are_padded_to_even(tmp_path):
    path = write_video(tmp_path / "odd.mp4", _ramp(t=3, h=15, w=17))
    back = read_video(path)
    assert back.shape == (3, 3, 16, 18)


def test_existing_file_replaced_atomically_and_no_temp_left(tmp_path):
    target = tmp_path / "v.mp4"
    write_video(target, _ramp(t=3))
    write_video(target, _ramp(t=5))
    assert count_frames(target) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]
    assert target.stat().st_mode & 0o044 == 0o044  # readable by others (a served gallery), not mkstemp's 0600


def test_zero_byte_encoder_is_an_error(tmp_path, monkeypatch):
    def broken(path, frames, fps, crf, quality):
        path.write_bytes(b"")

    monkeypatch.setattr(video_mod, "_encode_mp4", broken)
    with pytest.raises(RuntimeError, match="empty"):
        write_video(tmp_path / "bad.mp4", _ramp(t=3))
    assert list(tmp_path.iterdir()) == []


def test_garbage_or_short_encoder_output_is_an_error(tmp_path, monkeypatch):
    real = video_mod._encode_mp4
    monkeypatch.setattr(video_mod, "_encode_mp4", lambda path, *a: path.write_bytes(b"not a video" * 50))
    with pytest.raises(RuntimeError, match="decode"):
        write_video(tmp_path / "bad.mp4", _ramp(t=3))
    assert list(tmp_path.iterdir()) == []

    monkeypatch.setattr(video_mod, "_encode_mp4", lambda path, frames, *a: real(path, frames[:2], *a))
    with pytest.raises(RuntimeError, match="3 frames"):
        write_video(tmp_path / "short.mp4", _ramp(t=3))
    assert list(tmp_path.iterdir()) == []


def test_write_video_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="fps"):
        write_video(tmp_path / "a.mp4", _ramp(t=2), fps=0)
    with pytest.raises(ValueError, match="crf"):
        write_video(tmp_path / "a.mp4", _ramp(t=2), crf=60)
    with pytest.raises(ValueError, match="quality"):
        write_video(tmp_path / "a.mp4", _ramp(t=2), quality=11)


def test_grid_and_strip_geometry(tmp_path):
    images = torch.zeros(5, 3, 4, 6)
    grid = make_grid(images, nrow=2, padding=1)
    assert grid.shape == (3 * 5 + 1, 2 * 7 + 1, 3)
    assert grid[1, 1].tolist() == [128, 128, 128] and grid[0, 0].tolist() == [255, 255, 255]
    from PIL import Image

    path = write_png_strip(tmp_path / "s.png", _ramp(t=10, h=4, w=6), every=2, padding=1)
    with Image.open(path) as im:
        assert im.size == (5 * 7 + 1, 4 + 2)
    gif = write_gif(tmp_path / "g.gif", _ramp(t=4, h=4, w=6), fps=10)
    with Image.open(gif) as im:
        assert im.size == (6, 4) and im.n_frames == 4
    assert _leftovers(tmp_path) == []


def test_gallery_lists_every_video_and_setting(tmp_path):
    write_video(tmp_path / "video_000.mp4", _ramp(t=2))
    write_video(tmp_path / "video_001.mp4", _ramp(t=2))
    write_png_strip(tmp_path / "video_001.png", _ramp(t=2))
    items = [
        GalleryItem("video_000.mp4", title="video 0", settings={"seed": 0}),
        GalleryItem("video_001.mp4", title="video 1", strip="video_001.png", settings={"seed": 1, "prompt": "<b>"}),
    ]
    page = write_gallery(tmp_path, items, {"scheme": "hierarchy-2", "max_frames": 20})
    text = page.read_text()
    assert text.count("<video ") == 2
    for needle in ('src="video_000.mp4"', 'src="video_001.mp4"', 'src="video_001.png"', "hierarchy-2", "&lt;b&gt;"):
        assert needle in text
    with pytest.raises(FileNotFoundError, match="items"):
        write_gallery(tmp_path, [GalleryItem("nope.mp4")], {})
    write_json_atomic(tmp_path / "s.json", {"a": 1})
    assert json.loads((tmp_path / "s.json").read_text()) == {"a": 1}
    assert _leftovers(tmp_path) == []
