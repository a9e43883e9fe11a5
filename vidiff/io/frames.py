"""Conversions between vidiff's tensor layout and the uint8 frames that files hold."""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange

ArrayLike = torch.Tensor | np.ndarray


def to_uint8(video: ArrayLike) -> np.ndarray:
    """Convert a video (or one image) to uint8 RGB frames.

    Args:
        video: float ``(t, c, h, w)`` (or ``(c, h, w)``) in [-1, 1], torch or numpy, vidiff's layout; or uint8
            ``(t, h, w, c)`` (or ``(h, w, c)``), the layout of files. ``c`` is 1 (grey, repeated to RGB),
            3 (RGB) or 4 (RGBA, alpha dropped).

    Returns:
        ``(t, h, w, 3)`` uint8 numpy array.
    """
    if isinstance(video, torch.Tensor):
        video = video.detach().cpu()
        if video.dtype == torch.uint8:
            array = video.numpy()
        else:
            array = video.float().numpy()
    else:
        array = np.asarray(video)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise ValueError(f"video: expected (t, c, h, w) float or (t, h, w, c) uint8, got shape {tuple(array.shape)}")
    if array.dtype == np.uint8:
        frames = array
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError("video: holds NaN or infinite values")
        frames = rearrange(array, "t c h w -> t h w c")
        frames = np.clip(np.round((frames + 1.0) * 127.5), 0, 255).astype(np.uint8)
    else:
        raise ValueError(f"video: expected a float (in [-1, 1]) or uint8 array, got dtype {array.dtype}")
    c = frames.shape[-1]
    if c == 1:
        frames = np.repeat(frames, 3, axis=-1)
    elif c == 4:
        frames = frames[..., :3]
    elif c != 3:
        raise ValueError(
            f"video: expected 1, 3 or 4 channels, got {c} (shape {tuple(frames.shape)}); "
            "decode latent videos with the autoencoder first"
        )
    return np.ascontiguousarray(frames)


def to_float(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``(t, h, w, c)`` frames -> float ``(t, c, h, w)`` tensor in [-1, 1]."""
    x = torch.from_numpy(np.array(frames, dtype=np.float32)) / 127.5 - 1.0
    return rearrange(x, "t h w c -> t c h w")


def pad_to_even(frames: np.ndarray) -> np.ndarray:
    """Pad uint8 ``(t, h, w, c)`` frames on the bottom/right (edge values) so h and w are even (yuv420p needs it)."""
    _, h, w, _ = frames.shape
    ph, pw = h % 2, w % 2
    if ph or pw:
        frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    return frames
