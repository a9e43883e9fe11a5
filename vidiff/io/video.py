"""Reading and writing videos: decord (PyAV or imageio-ffmpeg as fallbacks) to read, imageio-ffmpeg to write.

Every writer is atomic (temporary name in the target folder, then ``os.replace``) and checks what it wrote:
an encoder that silently leaves a 0-byte or undecodable file raises instead of handing back a broken video.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidiff.io.atomic import atomic_path
from vidiff.io.errors import writing
from vidiff.io.frames import ArrayLike, pad_to_even, to_float, to_uint8
from vidiff.io.native import native_stderr_silenced

log = logging.getLogger(__name__)


def _backend() -> str:
    """The first available reader: ``decord``, ``av`` or ``imageio``."""
    for name in ("decord", "av"):
        try:
            __import__(name)
            return name
        except ImportError:
            continue
    return "imageio"


def _read_decord(path: Path) -> np.ndarray | None:
    """All frames via decord, or None where decord 0.6 mis-sizes rows.

    decord 0.6 ignores ffmpeg's padded row stride for some widths (e.g. 24, 48: rows padded to 32-byte
    multiples come back as 4 "channels" or fail a size check); those videos are read by another backend.
    """
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    n = len(reader)
    try:
        frames = reader.get_batch(list(range(n))).asnumpy() if n else None
    except decord.DECORDError:
        return None
    if frames is None or frames.ndim != 4 or frames.shape[-1] != 3:
        return None
    return frames


def _read_all(path: Path, backend: str) -> np.ndarray:
    """All frames of ``path`` as uint8 ``(t, h, w, 3)`` (the decoders' own log lines kept off the terminal)."""
    with native_stderr_silenced():
        return _decode_all(path, backend)


def _decode_all(path: Path, backend: str) -> np.ndarray:
    if backend == "decord":
        frames = _read_decord(path)
        if frames is not None:
            return frames
        log.debug("decord cannot read %s correctly; falling back to imageio-ffmpeg", path)
        backend = "imageio"
    if backend == "av":
        import av

        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        return np.stack(frames) if frames else np.zeros((0, 1, 1, 3), np.uint8)
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = next(gen)
    w, h = meta["size"]
    frames = [np.frombuffer(buf, np.uint8).reshape(h, w, 3) for buf in gen]
    return np.stack(frames) if frames else np.zeros((0, h, w, 3), np.uint8)


def count_frames(path: str | os.PathLike) -> int:
    """Number of frames in a video file, decoding every one (raises if the file cannot be decoded)."""
    return len(_read_all(Path(path), _backend()))


def read_video(
    path: str | os.PathLike,
    num_frames: int | None = None,
    start: int = 0,
    size: tuple[int, int] | None = None,
    backend: str | None = None,
) -> torch.Tensor:
    """Read a video file into vidiff's layout.

    Args:
        path: a video file (anything ffmpeg reads).
        num_frames: how many frames to return (from ``start``); None: all that remain. More than the file
            holds is an error.
        start: index of the first frame.
        size: ``(h, w)`` to resize to (bilinear, antialiased); None keeps the file's size.
        backend: ``decord``, ``av`` or ``imageio``; None picks the first importable, in that order.

    Returns:
        ``(t, c, h, w)`` float tensor in [-1, 1], c = 3.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no video file at {str(path)!r}")
    backend = backend or _backend()
    if backend not in ("decord", "av", "imageio"):
        raise ValueError(f"backend: expected one of decord, av, imageio; got {backend!r}")
    frames = _read_all(path, backend)
    total = len(frames)
    if start < 0 or start > total:
        raise ValueError(f"start: expected 0 <= start <= {total} (frames in {path.name}), got {start}")
    end = total if num_frames is None else start + num_frames
    if num_frames is not None and (num_frames < 1 or end > total):
        raise ValueError(
            f"num_frames: {path.name} has {total} frames, cannot read {num_frames} starting at frame {start}"
        )
    video = to_float(frames[start:end])
    if size is not None and tuple(video.shape[-2:]) != tuple(size):
        video = F.interpolate(video, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)
        video = video.clamp(-1.0, 1.0)
    return video


def _encode_mp4(path: Path, frames: np.ndarray, fps: float, crf: int | None, quality: float | None) -> None:
    """Encode uint8 ``(t, h, w, 3)`` frames (even h, w) to ``path`` with libx264 / yuv420p."""
    import imageio_ffmpeg

    _, h, w, _ = frames.shape
    params = ["-crf", str(crf)] if crf is not None and quality is None else None
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (w, h),
        fps=fps,
        codec="libx264",
        pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p",
        quality=quality,
        macro_block_size=1,
        output_params=params,
        ffmpeg_log_level="error",
    )
    writer.send(None)  # start the generator
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def write_video(
    path: str | os.PathLike,
    video: ArrayLike,
    fps: float = 8.0,
    crf: int | None = 18,
    quality: float | None = None,
    kept: str | None = None,
) -> Path:
    """Write an mp4 (libx264, yuv420p) atomically and check that it decodes to the right number of frames.

    Args:
        path: output file, e.g. ``out/video_000.mp4``.
        video: float ``(t, c, h, w)`` in [-1, 1] or uint8 ``(t, h, w, c)`` (see :func:`to_uint8`). Odd heights or
            widths are padded (edge pixels) to even, which yuv420p requires.
        fps: frames per second (> 0).
        crf: x264 constant rate factor, 0 (lossless) to 51 (worst); 18 is visually lossless.
        quality: imageio's 1-10 scale (10 best) used instead of ``crf`` when given.
        kept: what a failed write leaves intact and what to do, for the error's tail (default: "nothing was
            replaced" when ``path`` exists).

    Returns:
        the path written.

    Raises:
        RuntimeError: when the encoder leaves an empty or undecodable file, or one with the wrong frame count.
        vidiff.io.errors.WriteFault: the disk is full or ffmpeg stopped (one line; ``path`` is left as it was).
    """
    frames = pad_to_even(to_uint8(video))
    if len(frames) == 0:
        raise ValueError("video: has no frames")
    if not fps > 0:
        raise ValueError(f"fps: expected a positive number, got {fps}")
    if crf is not None and not 0 <= int(crf) <= 51:
        raise ValueError(f"crf: expected an integer in [0, 51], got {crf}")
    if quality is not None and not 1 <= quality <= 10:
        raise ValueError(f"quality: expected a number in [1, 10], got {quality}")
    path = Path(path)
    if not path.suffix:
        raise ValueError(f"path: expected a file name with a container suffix such as .mp4, got {str(path)!r}")
    if kept is None and path.is_file():
        kept = f"the previous {path.name} is intact"
    with atomic_path(path) as tmp, writing(path, kept):
        _encode_mp4(tmp, frames, float(fps), None if crf is None else int(crf), quality)
        size = tmp.stat().st_size if tmp.exists() else 0
        if size == 0:
            raise RuntimeError(f"writing {path}: the encoder produced an empty file")
        try:
            n = count_frames(tmp)
        except Exception as err:  # decoders raise assorted types on garbage
            raise RuntimeError(f"writing {path}: the encoded file does not decode ({err})") from err
        if n != len(frames):
            raise RuntimeError(f"writing {path}: wrote {len(frames)} frames but the file decodes to {n}")
    log.debug("wrote %s (%d frames, %dx%d)", path, len(frames), frames.shape[2], frames.shape[1])
    return path
