"""PSNR and SSIM per frame and per video.

Both take tensors of shape ``(..., c, h, w)``: any leading axes (``b t`` for videos, ``b`` for images) are
kept, so ``frame_psnr(x, y)`` of two ``(b, t, c, h, w)`` videos is ``(b, t)`` and ``video_psnr`` averages the
frames to ``(b,)``. Values are in ``value_range`` (vidiff's default ``(-1, 1)``; pass ``(0, 1)`` or
``(0, 255)`` for other data). Computation runs in float64.

SSIM convention (Wang et al. 2004, "Image quality assessment: from error visibility to structural
similarity"): an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = hi - lo, population
(not sample) statistics inside each window, per channel, and the mean of the SSIM map over the *valid*
positions only (windows fully inside the image, no padding). This equals scikit-image's
``structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=L, channel_axis=...)``, which filters with reflection padding and then crops the
``(win - 1) / 2`` border before averaging. Images are shifted by ``lo`` first, so SSIM of ``[-1, 1]``
data equals SSIM of the same images mapped to ``[0, 1]`` (SSIM's luminance term is not shift invariant).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

__all__ = ["frame_psnr", "frame_ssim", "gaussian_window", "video_psnr", "video_ssim"]


def _check_pair(x: torch.Tensor, y: torch.Tensor, value_range: tuple[float, float]) -> float:
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"x and y: expected torch tensors, got {type(x).__name__} and {type(y).__name__}")
    if x.shape != y.shape:
        raise ValueError(f"x and y: expected the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.ndim < 3:
        raise ValueError(f"x: expected shape (..., c, h, w) with at least 3 axes, got {tuple(x.shape)}")
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise ValueError(f"value_range: expected (lo, hi) with hi > lo, got {value_range}")
    return hi - lo


def frame_psnr(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    value_range: tuple[float, float] = (-1.0, 1.0),
    max_db: float | None = None,
) -> torch.Tensor:
    """Peak signal-to-noise ratio of each frame: ``10 log10(L^2 / MSE)``, MSE over ``c h w``.

    Args:
        x: ``(..., c, h, w)`` frames, e.g. ``(b, t, c, h, w)``.
        y: same shape as ``x``.
        value_range: ``(lo, hi)`` of the data; ``L = hi - lo`` (2 for vidiff's ``[-1, 1]``).
        max_db: cap on the result. Identical frames (MSE 0) give ``inf`` unless a cap is given.

    Returns:
        ``(...)`` float64 PSNR in dB, e.g. ``(b, t)``.
    """
    data_range = _check_pair(x, y, value_range)
    mse = (x.double() - y.double()).pow(2).mean(dim=(-3, -2, -1))
    out = 10.0 * torch.log10(data_range**2 / mse)  # mse == 0 -> +inf
    if max_db is not None:
        out = out.clamp(max=float(max_db))
    return out


def video_psnr(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    value_range: tuple[float, float] = (-1.0, 1.0),
    max_db: float | None = None,
) -> torch.Tensor:
    """PSNR of each video: the mean over frames of :func:`frame_psnr` (as FDM and MCVD report it).

    Args:
        x: ``(..., t, c, h, w)`` videos.
        y: same shape as ``x``.
        value_range: ``(lo, hi)`` of the data.
        max_db: cap applied per frame before averaging (``None``: a video with one identical frame is ``inf``).

    Returns:
        ``(...)`` float64, e.g. ``(b,)``.
    """
    if x.ndim < 4:
        raise ValueError(f"x: expected videos of shape (..., t, c, h, w), got {tuple(x.shape)}")
    return frame_psnr(x, y, value_range=value_range, max_db=max_db).mean(dim=-1)


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Normalised 1-D Gaussian taps ``(size,)`` centred on the middle tap (size must be odd)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size: expected an odd positive window size, got {size}")
    if not sigma > 0:
        raise ValueError(f"sigma: expected > 0, got {sigma}")
    coords = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(img: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter, valid positions only. img: ``(n, c, h, w)`` -> ``(n, c, h-k+1, w-k+1)``."""
    c = img.shape[1]
    k = g.numel()
    gh = g.view(1, 1, k, 1).expand(c, 1, k, 1)
    gw = g.view(1, 1, 1, k).expand(c, 1, 1, k)
    return F.conv2d(F.conv2d(img, gh, groups=c), gw, groups=c)


def frame_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    value_range: tuple[float, float] = (-1.0, 1.0),
    win_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Structural similarity of each frame (Wang et al. 2004, eq. 13; convention in the module docstring).

    ``SSIM = (2 mu_x mu_y + C1)(2 cov_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(var_x + var_y + C2))`` with
    Gaussian-weighted window statistics, ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2``, averaged over channels and
    valid window positions.

    Args:
        x: ``(..., c, h, w)`` frames, with ``h, w >= win_size``.
        y: same shape as ``x``.
        value_range: ``(lo, hi)`` of the data; ``L = hi - lo``.
        win_size: odd Gaussian window size (11 in the paper).
        sigma: Gaussian standard deviation in pixels (1.5 in the paper).
        k1: luminance stabiliser constant.
        k2: contrast stabiliser constant.

    Returns:
        ``(...)`` float64 SSIM in [-1, 1] (1 for identical frames), e.g. ``(b, t)``.
    """
    data_range = _check_pair(x, y, value_range)
    *lead, c, h, w = x.shape
    if h < win_size or w < win_size:
        raise ValueError(f"x: frames must be at least win_size={win_size} pixels each way, got h={h}, w={w}")
    lo = float(value_range[0])
    xs = rearrange(x.double() - lo, "... c h w -> (...) c h w")
    ys = rearrange(y.double() - lo, "... c h w -> (...) c h w")
    g = gaussian_window(win_size, sigma).to(xs.device)
    stack = torch.cat([xs, ys, xs * xs, ys * ys, xs * ys], dim=1)  # (n, 5c, h, w)
    mu_x, mu_y, e_xx, e_yy, e_xy = _filter_valid(stack, g).split(c, dim=1)
    var_x = e_xx - mu_x**2
    var_y = e_yy - mu_y**2
    cov = e_xy - mu_x * mu_y
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean(dim=(1, 2, 3)).reshape(lead)


def video_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    value_range: tuple[float, float] = (-1.0, 1.0),
    win_size: int = 11,
    sigma: float = 1.5,
) -> torch.Tensor:
    """SSIM of each video: the mean over frames of :func:`frame_ssim`.

    Args:
        x: ``(..., t, c, h, w)`` videos.
        y: same shape as ``x``.
        value_range: ``(lo, hi)`` of the data.
        win_size: odd Gaussian window size.
        sigma: Gaussian standard deviation in pixels.

    Returns:
        ``(...)`` float64, e.g. ``(b,)``.
    """
    if x.ndim < 4:
        raise ValueError(f"x: expected videos of shape (..., t, c, h, w), got {tuple(x.shape)}")
    return frame_ssim(x, y, value_range=value_range, win_size=win_size, sigma=sigma).mean(dim=-1)
