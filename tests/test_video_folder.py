"""Video-folder data set: decoded frame counts, cached index, skipping bad files, samples, errors."""

import json
import logging
import os
import shutil
from pathlib import Path

import imageio
import imageio.v3 as iio
import numpy as np
import pytest
import torch

from vidiff.data import decode
from vidiff.data.video_folder import VideoFolder, resize_center_crop, split_paths
from vidiff.data.video_index import INDEX_NAME
from vidiff.masks import FrameMaskSampler

pytest.importorskip("decord")


def _grey(f: int) -> int:
    return 10 + 8 * f


def _frames(n: int, h: int = 24, w: int = 32) -> np.ndarray:
    """Frame f is uniform grey level 10 + 8 f, so a decoded frame tells its own index."""
    return np.stack([np.full((h, w, 3), _grey(f), np.uint8) for f in range(n)])


def _mp4(path: Path, n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(
        path, fps=10, codec="libx264", macro_block_size=8, output_params=["-crf", "0"]
    ) as w:
        for frame in _frames(n):
            w.append_data(frame)


def _gif(path: Path, n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, _frames(n, 16, 16), duration=100, loop=0)


def _index_of(frame: torch.Tensor) -> int:
    """(3, h, w) in [-1, 1] -> the grey level's frame index."""
    level = float((frame.mean() + 1) * 127.5)
    return round((level - 10) / 8)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("videos_src")
    _mp4(root / "a" / "clip.mp4", 20)
    (root / "a" / "clip.txt").write_text("  a grey clip getting brighter\n")
    _mp4(root / "long.MP4", 30)
    _gif(root / "b" / "anim.gif", 6)
    (root / "empty.mp4").write_bytes(b"")
    (root / "junk.avi").write_bytes(b"not a video" * 50)
    (root / "notes.txt").write_text("ignored")
    return root


@pytest.fixture
def folder(source, tmp_path) -> Path:
    root = tmp_path / "videos"
    shutil.copytree(source, root)
    return root


def test_frame_counts_come_from_decoding(source, monkeypatch):
    import decord

    assert decode.count_frames(source / "a" / "clip.mp4") == 20
    assert decode.count_frames(source / "b" / "anim.gif") == 6
    monkeypatch.setattr(decord.VideoReader, "__len__", lambda self: 999)  # lying container metadata
    assert decode.count_frames(source / "long.MP4") == 30
    with pytest.raises(decode.DecodeError, match="zero-byte"):
        decode.count_frames(source / "empty.mp4")
    with pytest.raises(decode.DecodeError, match="junk.avi"):
        decode.count_frames(source / "junk.avi")


def test_read_frames_returns_the_requested_frames(source):
    for name, n in (("a/clip.mp4", 20), ("b/anim.gif", 6)):
        frames = decode.read_frames(source / name, [n - 1, 0, 3])
        assert frames.shape[0] == 3 and frames.shape[-1] == 3 and frames.dtype == np.uint8
        levels = frames.reshape(3, -1).mean(1)
        np.testing.assert_allclose(levels, [_grey(n - 1), _grey(0), _grey(3)], atol=3)


@pytest.mark.parametrize("backend", ["ffmpeg", "decord"])
def test_backends_agree_on_counts_and_frames(source, backend):
    path = source / "a" / "clip.mp4"
    assert decode.count_frames(path, backend) == 20
    levels = decode.read_frames(path, [7, 2], backend).reshape(2, -1).mean(1)
    np.testing.assert_allclose(levels, [_grey(7), _grey(2)], atol=3)


def test_auto_backend_falls_back_when_decord_misreads_small_widths(tmp_path):
    path = tmp_path / "narrow.mp4"
    with imageio.get_writer(
        path, fps=10, codec="libx264", macro_block_size=8, output_params=["-crf", "0"]
    ) as w:
        for frame in _frames(5, 16, 16):
            w.append_data(frame)
    assert decode.count_frames(path) == 5
    frames = decode.read_frames(path, [4, 1])  # decord 0.6 fails on 16-pixel-wide frames; ffmpeg reads them
    assert frames.shape == (2, 16, 16, 3)
    np.testing.assert_allclose(frames.reshape(2, -1).mean(1), [_grey(4), _grey(1)], atol=3)


def test_index_skips_bad_files_with_a_warning_and_is_cached(folder, caplog, monkeypatch):
    with caplog.at_level(logging.WARNING):
        ds = VideoFolder(folder, image_size=16)
    assert sorted(ds.paths) == ["a/clip.mp4", "b/anim.gif", "long.MP4"]
    assert {ds.paths[i]: ds.num_frames(i) for i in range(len(ds))} == {
        "a/clip.mp4": 20,
        "b/anim.gif": 6,
        "long.MP4": 30,
    }
    warned = caplog.text
    assert "skipping 2 of 5 video files" in warned and "empty.mp4" in warned and "junk.avi" in warned
    index = json.loads((folder / INDEX_NAME).read_text())
    assert {e["path"] for e in index["entries"]} == {
        "a/clip.mp4",
        "b/anim.gif",
        "long.MP4",
        "empty.mp4",
        "junk.avi",
    }

    def boom(*args, **kwargs):
        raise AssertionError("unchanged files must not be decoded again")

    monkeypatch.setattr("vidiff.data.video_index.count_frames", boom)
    again = VideoFolder(folder, image_size=16)
    assert again.paths == ds.paths


def test_index_is_invalidated_when_files_change(folder):
    VideoFolder(folder, image_size=16)
    _mp4(folder / "a" / "clip.mp4", 12)  # rewritten: new size and mtime
    os.utime(folder / "a" / "clip.mp4", ns=(1, 1))
    (folder / "long.MP4").unlink()
    _mp4(folder / "new.mp4", 9)
    ds = VideoFolder(folder, image_size=16)
    assert {ds.paths[i]: ds.num_frames(i) for i in range(len(ds))} == {
        "a/clip.mp4": 12,
        "b/anim.gif": 6,
        "new.mp4": 9,
    }
    index = json.loads((folder / INDEX_NAME).read_text())
    assert "long.MP4" not in {e["path"] for e in index["entries"]}
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")], "index written atomically"


def test_cache_dir_and_no_cache(folder, tmp_path):
    cache = tmp_path / "cache"
    VideoFolder(folder, image_size=16, cache_dir=cache)
    assert len(list(cache.glob("index-*.json"))) == 1 and not (folder / INDEX_NAME).exists()
    VideoFolder(folder, image_size=16, cache_index=False)
    assert not (folder / INDEX_NAME).exists()


def test_long_horizon_samples_hold_the_chosen_frames(folder):
    ds = VideoFolder(folder, image_size=16, sampler=FrameMaskSampler(6), seed=1)
    i = ds.paths.index("long.MP4")
    for epoch in range(3):
        sample = ds[(epoch, i)]
        assert sample["video"].shape == (6, 3, 16, 16) and sample["valid"].all()
        assert sample["video"].min() >= -1 and sample["video"].max() <= 1
        idx = sample["frame_idx"]
        assert (idx.diff() > 0).all() and int(idx.max()) < 30
        assert [_index_of(f) for f in sample["video"]] == idx.tolist()
        assert torch.equal(sample["source_idx"], idx)
        assert sample["caption"] == ""
    j = ds.paths.index("a/clip.mp4")
    assert ds[j]["caption"] == "a grey clip getting brighter"


def test_frame_stride_and_clips(folder):
    ds = VideoFolder(folder, image_size=16, frame_stride=2, clip_length=8, sampler=FrameMaskSampler(4))
    i = ds.paths.index("long.MP4")
    starts = set()
    for epoch in range(8):
        s = ds[(epoch, i)]
        assert int(s["frame_idx"].max()) < 8  # positions inside the clip
        src = s["source_idx"]
        assert (src % 2 == 0).all() and [_index_of(f) for f in s["video"]] == src.tolist()
        starts.add(int(src[0] - 2 * s["frame_idx"][0]))
    assert len(starts) > 1 and all(0 <= st <= 2 * (15 - 8) for st in starts)


def test_short_videos_are_masked_or_skipped(folder, caplog):
    masked = VideoFolder(folder, image_size=16, clip_length=10, sampler=FrameMaskSampler(8))
    sample = masked[masked.paths.index("b/anim.gif")]  # 6 frames < 8 slots
    assert sample["valid"].tolist() == [True] * 6 + [False] * 2
    assert not sample["observed"][6:].any() and (sample["video"][6:] == 0).all()
    assert (sample["frame_idx"].diff() > 0).all()
    with caplog.at_level(logging.WARNING):
        skipped = VideoFolder(
            folder, image_size=16, clip_length=10, short_videos="skip", sampler=FrameMaskSampler(8)
        )
    assert "b/anim.gif" not in skipped.paths and "anim.gif (6 frames)" in caplog.text


def test_file_that_breaks_after_indexing_is_replaced_deterministically(folder, caplog):
    ds = VideoFolder(folder, image_size=16, sampler=FrameMaskSampler(4))
    i = ds.paths.index("a/clip.mp4")
    (folder / "a" / "clip.mp4").write_bytes(b"garbage" * 10)
    with caplog.at_level(logging.WARNING):
        a = ds[(0, i)]
    b = ds[(0, i)]
    assert "a/clip.mp4" in caplog.text
    assert int(a["index"]) != i and torch.equal(a["video"], b["video"])


def test_resize_center_crop_closed_forms():
    x = torch.zeros(2, 3, 20, 40)
    x[..., :, 20:] = 1.0  # right half white
    y = resize_center_crop(x, 10)  # -> 10 x 20, crop columns 5..15
    assert y.shape == (2, 3, 10, 10)
    assert torch.allclose(y[..., :, :4], torch.zeros(1)) and torch.allclose(y[..., :, 6:], torch.ones(1))
    const = torch.full((1, 3, 24, 32), 0.25)
    assert torch.allclose(resize_center_crop(const, 16), torch.full((1, 3, 16, 16), 0.25))


def test_split_paths_is_deterministic_and_stable():
    paths = [f"v{i:03d}.mp4" for i in range(200)]
    train, val = split_paths(paths, 0.1, seed=0)
    assert split_paths(paths, 0.1, seed=0) == (train, val)
    assert not set(train) & set(val) and len(train) + len(val) == 200 and 8 <= len(val) <= 35
    _, val2 = split_paths(paths + ["extra.mp4"], 0.1, seed=0)
    assert set(val) <= set(val2)
    assert split_paths(paths[:2], 0.01)[1] != []  # at least one validation video


def test_errors_name_the_path(tmp_path, source):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        VideoFolder(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"no video files with extensions .*empty"):
        VideoFolder(empty)
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(source / "junk.avi", bad / "junk.avi")
    shutil.copy(source / "empty.mp4", bad / "empty.mp4")
    with pytest.raises(ValueError, match=r"none of the 2 video files .*could be decoded.*junk.avi"):
        VideoFolder(bad)
    with pytest.raises(
        ValueError, match=r"clip_length: 100 frames .*longer than every video.*long.MP4.*30 frames"
    ):
        VideoFolder(source, clip_length=100, cache_index=False)


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"image_size": 0}, "image_size"),
        ({"frame_stride": 0}, "frame_stride"),
        ({"clip_length": 4}, "clip_length"),
        ({"short_videos": "pad"}, "short_videos"),
        ({"backend": "opencv"}, "backend"),
    ],
)
def test_bad_arguments_name_the_key(source, kwargs, key):
    with pytest.raises(ValueError, match=key):
        VideoFolder(source, cache_index=False, **kwargs)


def test_a_file_that_could_not_be_read_is_retried_at_the_next_start(folder, monkeypatch, caplog):
    """A read error (permissions) is transient: never cached, so the file is used once it is readable again."""
    clip = folder / "a" / "clip.mp4"
    if os.geteuid() == 0:  # root reads a chmod-000 file: simulate the failure instead
        from vidiff.data import video_index

        real = video_index.check_readable

        def denied(path):
            if Path(path) == clip:
                raise PermissionError(13, "Permission denied", str(path))
            real(path)

        monkeypatch.setattr(video_index, "check_readable", denied)
    else:
        clip.chmod(0o000)
    try:
        with caplog.at_level(logging.WARNING):
            first = VideoFolder(folder, image_size=16)
    finally:
        clip.chmod(0o644)
        monkeypatch.undo()
    assert "a/clip.mp4" not in first.paths and "PermissionError" in caplog.text
    index = json.loads((folder / INDEX_NAME).read_text())
    assert "a/clip.mp4" not in {e["path"] for e in index["entries"]}  # not cached
    again = VideoFolder(folder, image_size=16)  # same size and mtime: retried all the same
    assert again.num_frames(again.paths.index("a/clip.mp4")) == 20
    assert "a/clip.mp4" in {e["path"] for e in json.loads((folder / INDEX_NAME).read_text())["entries"]}


def test_rebuild_index_recounts_every_file(folder, monkeypatch):
    VideoFolder(folder, image_size=16)
    calls = []
    real = decode.count_frames
    monkeypatch.setattr("vidiff.data.video_index.count_frames", lambda p, b="auto": calls.append(p) or real(p, b))
    VideoFolder(folder, image_size=16)
    assert calls == []  # cached
    VideoFolder(folder, image_size=16, rebuild_index=True)
    assert len(calls) == 5  # every video file, the undecodable ones too


def _smooth_video(path: Path, n: int, h: int, w: int) -> None:
    """Smooth gradients and a soft blob moving across (encoded near-losslessly): resizes of it are comparable."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for f in range(n):
        cx, cy = w * (0.3 + 0.05 * f), h * 0.5
        blob = np.exp(-(((xx - cx) / (0.15 * w)) ** 2 + ((yy - cy) / (0.15 * h)) ** 2))
        frame = np.stack([200 * xx / w + 20, 200 * yy / h + 20, 60 + 180 * blob], -1)
        frames.append(frame.clip(0, 255).astype(np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(path, fps=10, codec="libx264", macro_block_size=8, output_params=["-crf", "0"]) as wr:
        for frame in frames:
            wr.append_data(frame)


def test_decode_size_closed_forms():
    assert decode.decode_size(2160, 3840, 64) == (72, 128)  # 4K into 64x64: 128 wide, the aspect kept
    assert decode.decode_size(256, 256, 32) == (32, 32)
    assert decode.decode_size(192, 320, 32) == (38, 64)  # the width a multiple of 32, shorter side >= 32
    assert decode.decode_size(64, 64, 32) is None  # at most twice the target: decoded at full size
    assert decode.decode_size(24, 32, 8) is None  # the target width would not be smaller than a multiple of 32


def test_big_videos_are_decoded_at_the_target_size(tmp_path, monkeypatch, caplog):
    _smooth_video(tmp_path / "big.mp4", 8, 256, 256)
    asked = []
    real_reader = decode._decord_reader

    def spy(path, size=None):
        asked.append(size)
        return real_reader(path, size)

    monkeypatch.setattr(decode, "_decord_reader", spy)
    ds = VideoFolder(tmp_path, image_size=32, sampler=FrameMaskSampler(4), cache_index=False, backend="decord")
    with caplog.at_level(logging.WARNING):
        sample = ds[(0, 0)]
    assert (32, 32) in asked  # the decoder scales while decoding: no 256x256 frame of the sample is made
    assert "decoded at full size" not in caplog.text
    n = int(sample["valid"].sum())
    idx = sample["source_idx"][:n].tolist()
    full = torch.from_numpy(decode.read_frames(tmp_path / "big.mp4", idx, "ffmpeg")).permute(0, 3, 1, 2)
    expected = resize_center_crop(full.float() / 127.5 - 1, 32).clamp(-1, 1)
    diff = (sample["video"][:n] - expected).abs()
    assert sample["video"].shape[-2:] == (32, 32)
    assert diff.mean() < 0.02 and diff.max() < 0.15, (diff.mean(), diff.max())


def test_big_videos_decoded_at_full_size_are_named_once(tmp_path, caplog):
    _smooth_video(tmp_path / "big.mp4", 8, 256, 256)
    ds = VideoFolder(tmp_path, image_size=32, sampler=FrameMaskSampler(4), cache_index=False, backend="ffmpeg")
    with caplog.at_level(logging.WARNING):
        first, again = ds[(0, 0)], ds[(1, 0)]
    warnings = [r.getMessage() for r in caplog.records if "decoded at full size" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("big.mp4: 256x256 frames are decoded at full size for 32x32")
    assert "MB" in warnings[0] and "scale=-2:64" in warnings[0]
    assert first["video"].shape == again["video"].shape == (4, 3, 32, 32)
