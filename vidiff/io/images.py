"""Still images of videos: grids, png strips and gifs (Pillow), all written atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from vidiff.io.atomic import atomic_path
from vidiff.io.frames import ArrayLike, to_uint8


def make_grid(images: ArrayLike, nrow: int = 8, padding: int = 2, pad_value: int = 255) -> np.ndarray:
    """Lay images out in a grid, row by row.

    Args:
        images: float ``(n, c, h, w)`` in [-1, 1] or uint8 ``(n, h, w, c)``.
        nrow: images per row.
        padding: pixels between (and around) images.
        pad_value: grey level of the padding.

    Returns:
        uint8 ``(H, W, 3)`` with ``H = rows * (h + padding) + padding``, ``W = ncol * (w + padding) + padding``.
    """
    frames = to_uint8(images)
    if nrow < 1:
        raise ValueError(f"nrow: expected >= 1, got {nrow}")
    if padding < 0:
        raise ValueError(f"padding: expected >= 0, got {padding}")
    n, h, w, c = frames.shape
    ncol = min(nrow, n)
    rows = -(-n // ncol)
    grid = np.full((rows * (h + padding) + padding, ncol * (w + padding) + padding, c), pad_value, np.uint8)
    for i, frame in enumerate(frames):
        r, col = divmod(i, ncol)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y : y + h, x : x + w] = frame
    return grid


def save_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Save a uint8 ``(H, W, 3)`` image atomically (format from the suffix, e.g. .png)."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"path: unknown image suffix {path.suffix!r} in {str(path)!r}; use e.g. .png or .jpg")
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format=fmt)
    return path


def save_image_grid(
    path: str | os.PathLike, images: ArrayLike, nrow: int = 8, padding: int = 2, pad_value: int = 255
) -> Path:
    """Save :func:`make_grid` of ``images`` (float ``(n, c, h, w)`` or uint8 ``(n, h, w, c)``) to ``path``."""
    return save_image(path, make_grid(images, nrow=nrow, padding=padding, pad_value=pad_value))


def strip_indices(num_frames: int, every: int = 1, max_frames: int | None = None) -> list[int]:
    """Frame indices a png strip shows: every ``every``-th frame, thinned evenly to at most ``max_frames``."""
    if every < 1:
        raise ValueError(f"every: expected >= 1, got {every}")
    idx = list(range(0, num_frames, every))
    if max_frames is not None and len(idx) > max_frames:
        if max_frames < 1:
            raise ValueError(f"max_frames: expected >= 1, got {max_frames}")
        picks = np.linspace(0, len(idx) - 1, max_frames).round().astype(int)
        idx = [idx[i] for i in picks]
    return idx


def write_png_strip(
    path: str | os.PathLike,
    video: ArrayLike,
    every: int = 1,
    max_frames: int | None = 32,
    nrow: int | None = None,
    padding: int = 1,
) -> Path:
    """Save frames of a video side by side (one row, or rows of ``nrow``) as a png.

    Args:
        path: output image.
        video: float ``(t, c, h, w)`` in [-1, 1] or uint8 ``(t, h, w, c)``.
        every: keep every ``every``-th frame.
        max_frames: at most this many frames (evenly spread); None keeps all.
        nrow: frames per row; None puts all in one row.
        padding: pixels between frames.
    """
    frames = to_uint8(video)
    idx = strip_indices(len(frames), every, max_frames)
    return save_image_grid(path, frames[idx], nrow=nrow or len(idx), padding=padding)


#: Colour that marks given (observed / keyframe) frames in strips, the gallery and validation videos.
GIVEN_RGB = (255, 140, 0)


def write_labelled_strip(
    path: str | os.PathLike,
    video: ArrayLike,
    given: Sequence[int] = (),
    max_frames: int | None = 32,
    nrow: int = 8,
    min_size: int = 48,
) -> list[int]:
    """Save frames of a video in rows of ``nrow``, each with its frame number under it and the ``given``
    frames framed in :data:`GIVEN_RGB` (the gallery's strip).

    Args:
        path: output png.
        video: float ``(t, c, h, w)`` in [-1, 1] or uint8 ``(t, h, w, c)``.
        given: frame numbers that were given rather than sampled.
        max_frames: at most this many frames: the first and last of each run of given frames, the rest evenly
            spread; None keeps all.
        nrow: frames per row.
        min_size: small frames are enlarged (nearest neighbour, whole multiples) to at least this height.

    Returns:
        the frame numbers shown, in order.
    """
    from PIL import ImageDraw, ImageFont

    from vidiff.io.gallery import runs

    frames = to_uint8(video)
    ends = {f for run in runs([i for i in given if 0 <= i < len(frames)]) for f in run}
    spread = None if max_frames is None else max(2, max_frames - len(ends - {0, len(frames) - 1}))
    idx = sorted(set(strip_indices(len(frames), 1, spread)) | ends)  # each run of given frames shows
    _, h, w, _ = frames.shape
    scale = max(1, -(-min_size // h))
    font = ImageFont.load_default(size=11)
    border, label = 3, 14
    cell_w, cell_h = w * scale + 2 * border, h * scale + 2 * border + label
    ncol = min(nrow, len(idx))
    rows = -(-len(idx) // ncol)
    sheet = Image.new("RGB", (ncol * cell_w, rows * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    marked = set(given)
    for n, i in enumerate(idx):
        r, col = divmod(n, ncol)
        x, y = col * cell_w, r * cell_h
        if i in marked:
            draw.rectangle([x, y, x + cell_w - 1, y + h * scale + 2 * border - 1], fill=GIVEN_RGB)
        frame = Image.fromarray(frames[i]).resize((w * scale, h * scale), Image.NEAREST)
        sheet.paste(frame, (x + border, y + border))
        draw.text((x + cell_w / 2, y + h * scale + 2 * border + label / 2), str(i), fill=(0, 0, 0), font=font,
                  anchor="mm")
    save_image(path, np.asarray(sheet))
    return idx


def write_gif(path: str | os.PathLike, video: ArrayLike, fps: float = 8.0, loop: int = 0) -> Path:
    """Write an animated gif atomically and check that it opens.

    Args:
        path: output file (``.gif``).
        video: float ``(t, c, h, w)`` in [-1, 1] or uint8 ``(t, h, w, c)``.
        fps: frames per second (> 0); gif stores delays in 10 ms units, so it is rounded.
        loop: 0 loops forever.
    """
    if not fps > 0:
        raise ValueError(f"fps: expected a positive number, got {fps}")
    frames = to_uint8(video)
    if len(frames) == 0:
        raise ValueError("video: has no frames")
    images = [Image.fromarray(f) for f in frames]
    path = Path(path)
    with atomic_path(path) as tmp:
        images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=1000.0 / fps, loop=loop
        )
        if tmp.stat().st_size == 0:
            raise RuntimeError(f"writing {path}: produced an empty file")
        with Image.open(tmp) as check:
            check.verify()
    return path


def compare_frames(
    real: ArrayLike,
    fake: ArrayLike,
    observed: Sequence[bool],
    frame_idx: Sequence[int],
    min_size: int = 64,
) -> np.ndarray:
    """Labelled ``real | model`` frames for validation samples: each frame of the two videos side by side
    under the words "real" and "model", framed in :data:`GIVEN_RGB` when it was observed (given to the
    model), with "frame N" (and "observed") under it.

    Args:
        real, fake: float ``(t, c, h, w)`` in [-1, 1] or uint8 ``(t, h, w, c)``, the same shape.
        observed: ``t`` flags, True where the frame was given to the model.
        frame_idx: ``t`` frame numbers (positions in the source video).
        min_size: small frames are enlarged (nearest neighbour, whole multiples) to at least this height.

    Returns:
        uint8 ``(t, H, W, 3)``; ``H`` and ``W`` even (ready for mp4).
    """
    from PIL import ImageDraw, ImageFont

    a, b = to_uint8(real), to_uint8(fake)
    if a.shape != b.shape:
        raise ValueError(f"real, fake: expected the same shape, got {a.shape} and {b.shape}")
    t, h, w, _ = a.shape
    if len(observed) != t or len(frame_idx) != t:
        raise ValueError(f"observed, frame_idx: expected {t} entries each, got {len(observed)}, "
                         f"{len(frame_idx)}")
    scale = max(1, -(-min_size // h))
    fh, fw, border, head, foot, gap = h * scale, w * scale, 3, 14, 14, 4
    width = 2 * (fw + 2 * border) + gap
    height = head + fh + 2 * border + foot
    width, height = width + width % 2, height + height % 2
    font = ImageFont.load_default(size=11)
    out = np.empty((t, height, width, 3), np.uint8)
    for i in range(t):
        tile = Image.new("RGB", (width, height), (255, 255, 255))
        draw = ImageDraw.Draw(tile)
        for k, (frames, label) in enumerate(((a, "real"), (b, "model"))):
            x = k * (fw + 2 * border + gap)
            draw.text((x + border + fw / 2, head / 2), label, fill=(0, 0, 0), font=font, anchor="mm")
            if observed[i]:
                draw.rectangle([x, head, x + fw + 2 * border - 1, head + fh + 2 * border - 1], fill=GIVEN_RGB)
            image = Image.fromarray(frames[i]).resize((fw, fh), Image.NEAREST)
            tile.paste(image, (x + border, head + border))
        note = f"frame {int(frame_idx[i])}" + (" · observed" if observed[i] else "")
        draw.text((width / 2, height - foot / 2 - 1), note, fill=(0, 0, 0), font=font, anchor="mm")
        out[i] = np.asarray(tile)
    return out
