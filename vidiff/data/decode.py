"""Video decoding for the video-folder data set: frame counting by decoding and random-access reads.

Backends, chosen per file:

* ``.gif`` (and animated ``.webp``/``.png``): Pillow, frame by frame (decord cannot open GIFs).
* everything else: decord when importable, else PyAV when importable, else an ImportError saying what to
  install.

Frame counts come from decoding every frame once (:func:`count_frames`), never from container metadata:
decord's ``len(VideoReader)`` is derived from the stream's duration and frame rate and can disagree with the
frames that actually decode (variable frame rate, truncated files). A mismatch is logged at debug level.
The data set caches the counts on disk, so each file is decoded fully once.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

PILLOW_SUFFIXES = (".gif", ".webp", ".png", ".apng")
BACKENDS = ("auto", "decord", "pyav", "pillow")


class DecodeError(RuntimeError):
    """A file could not be opened or decoded."""


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def backend_for(path: str | Path, backend: str = "auto") -> str:
    """The backend that reads ``path``: ``backend`` itself, or for "auto" Pillow / decord / PyAV."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {list(BACKENDS)}, got {backend!r}")
    if backend != "auto":
        return backend
    if Path(path).suffix.lower() in PILLOW_SUFFIXES:
        return "pillow"
    if _have("decord"):
        return "decord"
    if _have("av"):
        return "pyav"
    raise ImportError("no video decoder: install decord (x86_64) or PyAV (`pip install av`)")


# ----------------------------------------------------------------------------------------------- decord
def _decord_reader(path: str):
    import decord

    try:
        return decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    except Exception as err:  # decord raises RuntimeError / DECORDError with C++ messages
        raise DecodeError(f"{path}: decord cannot open it ({type(err).__name__}: {str(err).splitlines()[0]})") from err


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
    except Exception as err:
        log.debug("%s: decoding stopped after %d frames (%s)", path, count, err)
    if count != len(reader):
        log.debug("%s: %d frames decode, container metadata says %d", path, count, len(reader))
    return count


def _decord_read(path: str, indices: Sequence[int]) -> np.ndarray:
    reader = _decord_reader(path)
    try:
        return reader.get_batch(list(indices)).asnumpy()
    except Exception as err:
        raise DecodeError(f"{path}: decord failed reading frames {list(indices)[:8]}...: {err}") from err


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
        except Exception as err:  # a truncated tail: keep what decoded
            log.debug("%s: PyAV decoding stopped early (%s)", path, err)


def _pyav_count(path: str) -> int:
    return sum(1 for _ in _pyav_frames(path))


def _pyav_read(path: str, indices: Sequence[int]) -> np.ndarray:
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
    except Exception as err:
        log.debug("%s: decoding stopped after %d frames (%s)", path, count, err)
    return count


def _pillow_read(path: str, indices: Sequence[int]) -> np.ndarray:
    image = _pillow_image(path)
    frames = {}
    try:
        for i in sorted({int(i) for i in indices}):  # GIF frames depend on earlier ones: seek forward
            image.seek(i)
            frames[i] = np.asarray(image.convert("RGB"))
    except Exception as err:
        raise DecodeError(f"{path}: Pillow failed reading frame {i}: {err}") from err
    return np.stack([frames[int(i)] for i in indices])


_COUNT = {"decord": _decord_count, "pyav": _pyav_count, "pillow": _pillow_count}
_READ = {"decord": _decord_read, "pyav": _pyav_read, "pillow": _pillow_read}


def count_frames(path: str | Path, backend: str = "auto") -> int:
    """The number of frames that decode from ``path`` (decodes the whole file).

    Raises:
        DecodeError: the file cannot be opened.
    """
    path = str(path)
    if Path(path).stat().st_size == 0:
        raise DecodeError(f"{path}: zero-byte file")
    return _COUNT[backend_for(path, backend)](path)


def read_frames(path: str | Path, indices: Sequence[int], backend: str = "auto") -> np.ndarray:
    """Frames ``indices`` (k,) of ``path`` -> (k, h, w, 3) uint8 RGB.

    Raises:
        DecodeError: the file or one of the frames cannot be decoded.
    """
    if len(indices) == 0:
        raise ValueError("indices: expected at least one frame index, got none")
    path = str(path)
    frames = _READ[backend_for(path, backend)](path, indices)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] != len(indices):
        raise DecodeError(f"{path}: expected (k={len(indices)}, h, w, 3) frames, decoded {frames.shape}")
    return frames
