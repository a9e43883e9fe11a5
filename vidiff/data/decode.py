"""Video decoding for the video-folder data set: frame counting by decoding and random-access reads.

Backends, chosen per file:

* ``.gif`` (and animated ``.webp``/``.png``): Pillow, frame by frame (decord cannot open GIFs).
* everything else: decord when importable, else PyAV when importable, then the ffmpeg executable of
  imageio-ffmpeg (a sequential pipe: slow for random access, but it reads what the others cannot).

With ``backend="auto"`` the backends are tried in that order per call: a file that one backend cannot read
is tried with the next before it counts as unreadable. This matters in practice: decord 0.6 fails
(``DECORDArrayCopyFromTo: The size must exactly match``) or returns misshapen frames for some small frame
widths (e.g. 16, 24 or 48 pixels), while counting their frames fine.

Frame counts come from decoding every frame once (:func:`count_frames`), never from container metadata:
decord's ``len(VideoReader)`` is derived from the stream's duration and frame rate and can disagree with the
frames that actually decode (variable frame rate, truncated files). A mismatch is logged at debug level.
The data set caches the counts on disk, so each file is decoded fully once.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vidiff.io.native import native_stderr_silenced

log = logging.getLogger(__name__)

PILLOW_SUFFIXES = (".gif", ".webp", ".png", ".apng")
BACKENDS = ("auto", "decord", "pyav", "ffmpeg", "pillow")


class DecodeError(RuntimeError):
    """A file could not be opened or decoded."""


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def backends_for(path: str | Path, backend: str = "auto") -> list[str]:
    """The backends to try for ``path``, in order: ``[backend]``, or for "auto" the available chain."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {list(BACKENDS)}, got {backend!r}")
    if backend != "auto":
        return [backend]
    if Path(path).suffix.lower() in PILLOW_SUFFIXES:
        chain = ["pillow", "ffmpeg"]
    else:
        chain = [b for b, module in (("decord", "decord"), ("pyav", "av")) if _have(module)] + ["ffmpeg"]
    return [b for b in chain if b != "ffmpeg" or _have("imageio_ffmpeg")] or _no_decoder()


def _no_decoder() -> list[str]:
    raise ImportError("no video decoder: install decord (x86_64), PyAV (`pip install av`) or imageio-ffmpeg")


# ----------------------------------------------------------------------------------------------- decord
def _decord_reader(path: str, size: tuple[int, int] | None = None):
    import decord

    shape = {} if size is None else {"height": int(size[0]), "width": int(size[1])}
    try:
        return decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1, **shape)
    except Exception as err:  # decord raises RuntimeError / DECORDError with C++ messages
        raise DecodeError(
            f"{path}: decord cannot open it ({type(err).__name__}: {str(err).splitlines()[0]})"
        ) from err


def _decord_count(path: str) -> int:
    reader = _decord_reader(path)
    count = 0
    try:
        reader.seek(0)
        while True:
            reader.next()
            count += 1
    except StopIteration:
        pass
    except Exception as err:  # noqa: BLE001 - C decoders raise anything; keep the frames that decoded
        log.debug("%s: decoding stopped after %d frames (%s)", path, count, err)
    if count != len(reader):
        log.debug("%s: %d frames decode, container metadata says %d", path, count, len(reader))
    return count


def _decord_read(path: str, indices: Sequence[int], size: tuple[int, int] | None = None) -> np.ndarray:
    reader = _decord_reader(path, size)
    try:
        frames = reader.get_batch(list(indices)).asnumpy()
    except Exception as err:
        msg = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise DecodeError(f"{path}: decord failed reading frames {list(indices)[:8]}: {msg}") from err
    if frames.shape[-1] != 3:
        raise DecodeError(f"{path}: decord returned misshapen frames {frames.shape}")
    return frames


# ------------------------------------------------------------------------------------------------- PyAV
def _pyav_frames(path: str):
    import av

    try:
        container = av.open(path)
    except Exception as err:
        raise DecodeError(f"{path}: PyAV cannot open it ({type(err).__name__}: {err})") from err
    with container:
        if not container.streams.video:
            raise DecodeError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            yield from container.decode(stream)
        except Exception as err:  # noqa: BLE001 - a truncated tail: keep what decoded
            log.debug("%s: PyAV decoding stopped early (%s)", path, err)


def _pyav_count(path: str) -> int:
    return sum(1 for _ in _pyav_frames(path))


def _pyav_read(path: str, indices: Sequence[int], size: tuple[int, int] | None = None) -> np.ndarray:
    wanted = {int(i) for i in indices}
    last = max(wanted)
    found: dict[int, np.ndarray] = {}
    for i, frame in enumerate(_pyav_frames(path)):
        if i in wanted:
            found[i] = frame.to_ndarray(format="rgb24")
        if i >= last:
            break
    missing = wanted - found.keys()
    if missing:
        raise DecodeError(f"{path}: frames {sorted(missing)[:8]} did not decode")
    return np.stack([found[int(i)] for i in indices])


# ----------------------------------------------------------------------------------------------- ffmpeg
def _ffmpeg_frames(path: str):
    """Yields (h, w, 3) uint8 frames from the imageio-ffmpeg executable (decodes everything in order)."""
    import imageio_ffmpeg

    try:
        gen = imageio_ffmpeg.read_frames(path, pix_fmt="rgb24")
        meta = next(gen)
    except Exception as err:
        raise DecodeError(
            f"{path}: ffmpeg cannot open it ({type(err).__name__}: {str(err).strip()[-200:]})"
        ) from err
    w, h = meta["size"]
    try:
        for raw in gen:
            yield np.frombuffer(raw, np.uint8).reshape(h, w, 3)
    except Exception as err:  # noqa: BLE001 - a truncated tail: keep what decoded
        log.debug("%s: ffmpeg decoding stopped early (%s)", path, err)
    finally:
        gen.close()


def _ffmpeg_count(path: str) -> int:
    return sum(1 for _ in _ffmpeg_frames(path))


def _ffmpeg_read(path: str, indices: Sequence[int], size: tuple[int, int] | None = None) -> np.ndarray:
    wanted = {int(i) for i in indices}
    last, found = max(wanted), {}
    frames = _ffmpeg_frames(path)
    for i, frame in enumerate(frames):
        if i in wanted:
            found[i] = frame.copy()
        if i >= last:
            frames.close()
            break
    missing = wanted - found.keys()
    if missing:
        raise DecodeError(f"{path}: frames {sorted(missing)[:8]} did not decode")
    return np.stack([found[int(i)] for i in indices])


# ----------------------------------------------------------------------------------------------- Pillow
def _pillow_image(path: str):
    from PIL import Image

    try:
        image = Image.open(path)
        image.load()
    except Exception as err:
        raise DecodeError(f"{path}: Pillow cannot open it ({type(err).__name__}: {err})") from err
    return image


def _pillow_count(path: str) -> int:
    image = _pillow_image(path)
    count = 0
    try:
        while True:
            image.seek(count)
            image.convert("RGB")  # decode it
            count += 1
    except EOFError:
        pass
    except Exception as err:  # noqa: BLE001 - C decoders raise anything; keep the frames that decoded
        log.debug("%s: decoding stopped after %d frames (%s)", path, count, err)
    return count


def _pillow_read(path: str, indices: Sequence[int], size: tuple[int, int] | None = None) -> np.ndarray:
    image = _pillow_image(path)
    frames = {}
    try:
        for i in sorted({int(i) for i in indices}):  # GIF frames depend on earlier ones: seek forward
            image.seek(i)
            frames[i] = np.asarray(image.convert("RGB"))
    except Exception as err:
        raise DecodeError(f"{path}: Pillow failed reading frame {i}: {err}") from err
    return np.stack([frames[int(i)] for i in indices])


_COUNT = {"decord": _decord_count, "pyav": _pyav_count, "ffmpeg": _ffmpeg_count, "pillow": _pillow_count}
_READ = {"decord": _decord_read, "pyav": _pyav_read, "ffmpeg": _ffmpeg_read, "pillow": _pillow_read}


def _first_success(fns: dict, path: str, backend: str, *args):
    errors = []
    for name in backends_for(path, backend):
        try:
            with native_stderr_silenced():  # decord's and ffmpeg's own log lines; the DecodeError says it
                return fns[name](path, *args)
        except DecodeError as err:
            errors.append(f"{name}: {' '.join(str(err).split())[:300]}")
            log.debug("%s: %s backend failed (%s)", path, name, err)
    raise DecodeError(f"{path}: no backend could decode it ({'; '.join(errors)})")


def count_frames(path: str | Path, backend: str = "auto") -> int:
    """The number of frames that decode from ``path`` (decodes the whole file).

    A backend that opens the file but decodes no frame counts as failing, so the next one is tried.

    Raises:
        DecodeError: the file is empty or no backend can decode a frame of it.
    """
    path = str(path)
    if Path(path).stat().st_size == 0:
        raise DecodeError(f"{path}: zero-byte file")

    def nonzero(count_fn):
        def count(p: str) -> int:
            n = count_fn(p)
            if n == 0:
                raise DecodeError(f"{p}: no frame decodes")
            return n

        return count

    return _first_success({k: nonzero(f) for k, f in _COUNT.items()}, path, backend)


def decode_size(height: int, width: int, image_size: int) -> tuple[int, int] | None:
    """The ``(h, w)`` to ask the decoder for when frames of ``height x width`` end up ``image_size`` square, or
    None to decode at full size.

    Only files whose shorter side is over twice ``image_size`` are decoded smaller: at the aspect ratio of the
    file, the shorter side at least ``image_size``, the width a multiple of 32 (decord 0.6 mis-reads rows whose
    byte length is not a multiple of 32). :func:`~vidiff.data.video_folder.resize_center_crop` finishes the
    resize and crop.
    """
    if min(height, width) <= 2 * image_size:
        return None
    scale = image_size / min(height, width)
    dw = max(32, math.ceil(width * scale / 32) * 32)
    dh = max(image_size, round(height * dw / width))
    return None if dw >= width or dh >= height else (dh, dw)


def frame_size(path: str | Path, backend: str = "auto") -> tuple[int, int]:
    """``(h, w)`` of the frames of ``path`` (decodes its first frame).

    Raises:
        DecodeError: no backend can decode the first frame.
    """
    return tuple(read_frames(path, [0], backend).shape[1:3])


def read_frames(
    path: str | Path, indices: Sequence[int], backend: str = "auto", size: tuple[int, int] | None = None
) -> np.ndarray:
    """Frames ``indices`` (k,) of ``path`` -> (k, h, w, 3) uint8 RGB.

    Args:
        path: the video file.
        indices: frame numbers to decode.
        backend: see :data:`BACKENDS`.
        size: ``(h, w)`` to decode at (decord scales while decoding, with ffmpeg's scaler), e.g. from
            :func:`decode_size`; backends that cannot (PyAV, the ffmpeg pipe, Pillow) return full-size frames, so
            callers must accept either.

    Raises:
        DecodeError: no backend can decode the file or one of the frames.
    """
    if len(indices) == 0:
        raise ValueError("indices: expected at least one frame index, got none")
    path = str(path)

    def checked(read_fn):
        def read(p: str, idx: Sequence[int]) -> np.ndarray:
            frames = read_fn(p, idx, size)
            if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] != len(idx):
                raise DecodeError(f"{p}: expected (k={len(idx)}, h, w, 3) frames, decoded {frames.shape}")
            return frames

        return read

    return _first_success({k: checked(f) for k, f in _READ.items()}, path, backend, indices)
