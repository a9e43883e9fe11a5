"""PSNR and SSIM against closed forms, a direct per-window reference, and their invariances."""

import itertools
import math

import numpy as np
import pytest
import torch

from vidiff.metrics.image_quality import frame_psnr, frame_ssim, gaussian_window, video_psnr, video_ssim


def _video(b=2, t=3, c=3, h=16, w=16):
    return torch.rand(b, t, c, h, w) * 2 - 1


def test_psnr_shapes_and_identical_frames_are_inf():
    x = _video()
    assert frame_psnr(x, x).shape == (2, 3)
    assert torch.isinf(frame_psnr(x, x)).all()
    assert video_psnr(x, x).shape == (2,)
    assert (frame_psnr(x, x, max_db=80.0) == 80.0).all()


@pytest.mark.parametrize("offset", [0.1, 0.5])
def test_psnr_of_a_constant_offset(offset):
    x = _video()
    # MSE = offset^2, data range 2: 10 log10(4 / offset^2)
    expected = 10 * math.log10(4 / offset**2)
    torch.testing.assert_close(frame_psnr(x, x + offset), torch.full((2, 3), expected, dtype=torch.float64))
    # [0, 1] data: range 1
    expected01 = 10 * math.log10(1 / offset**2)
    got = frame_psnr((x + 1) / 2, (x + 1) / 2 + offset, value_range=(0.0, 1.0))
    torch.testing.assert_close(got, torch.full((2, 3), expected01, dtype=torch.float64))


def test_video_psnr_is_mean_of_frame_psnr():
    x, y = _video(), _video()
    torch.testing.assert_close(video_psnr(x, y), frame_psnr(x, y).mean(-1))


def test_gaussian_window_is_normalised_and_symmetric():
    g = gaussian_window(11, 1.5)
    assert g.shape == (11,)
    torch.testing.assert_close(g.sum(), torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(g, g.flip(0))
    assert g.argmax() == 5
    torch.testing.assert_close(g[6] / g[5], torch.tensor(math.exp(-1 / (2 * 1.5**2)), dtype=torch.float64))


def test_ssim_identical_is_one():
    x = _video()
    torch.testing.assert_close(frame_ssim(x, x), torch.ones(2, 3, dtype=torch.float64))
    torch.testing.assert_close(video_ssim(x, x), torch.ones(2, dtype=torch.float64))


@pytest.mark.parametrize("cx,a,b", [(0.2, 1.0, 0.1), (0.5, 0.5, 0.0), (0.8, 1.0, -0.6)])
def test_ssim_of_constant_images_matches_formula(cx, a, b):
    # constant images (data in [0, 1]): variances and covariance vanish, SSIM is the luminance term only
    cy = a * cx + b
    x = torch.full((1, 1, 3, 16, 16), cx, dtype=torch.float64)
    y = torch.full((1, 1, 3, 16, 16), cy, dtype=torch.float64)
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * cx * cy + c1) / (cx**2 + cy**2 + c1)
    got = frame_ssim(x, y, value_range=(0.0, 1.0))
    assert got.item() == pytest.approx(expected, rel=1e-9)


def test_ssim_value_range_shift_and_scale_invariance():
    x = torch.rand(1, 2, 3, 14, 14)
    y = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    s01 = frame_ssim(x, y, value_range=(0.0, 1.0))
    sm11 = frame_ssim(x * 2 - 1, y * 2 - 1)  # vidiff's [-1, 1]
    s255 = frame_ssim(x * 255, y * 255, value_range=(0.0, 255.0))
    torch.testing.assert_close(s01, sm11)
    torch.testing.assert_close(s01, s255)


def _ssim_reference(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Direct per-window SSIM of (h, w) images: explicit loops over valid 11x11 windows (Wang et al. 2004)."""
    g1 = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    g = np.outer(g1, g1)
    g /= g.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    vals = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (g * px).sum(), (g * py).sum()
            vx = (g * (px - mx) ** 2).sum()
            vy = (g * (py - my) ** 2).sum()
            cxy = (g * (px - mx) * (py - my)).sum()
            vals.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(vals))


def test_ssim_matches_direct_window_reference():
    x = torch.rand(2, 13, 14, dtype=torch.float64)
    y = (x + 0.3 * torch.randn_like(x)).clamp(0, 1)
    got = frame_ssim(x[None], y[None], value_range=(0.0, 1.0))  # (1,): per-channel mean over 2 channels
    ref = np.mean([_ssim_reference(x[k].numpy(), y[k].numpy(), 1.0) for k in range(2)])
    assert got.item() == pytest.approx(ref, rel=1e-10)


def test_ssim_symmetric_and_decreasing_with_noise():
    x = torch.rand(1, 1, 3, 24, 24) * 2 - 1
    noise = torch.randn_like(x)
    y = x + 0.1 * noise
    torch.testing.assert_close(frame_ssim(x, y), frame_ssim(y, x))
    scores = [frame_ssim(x, x + s * noise).item() for s in (0.0, 0.05, 0.1, 0.3, 1.0)]
    assert scores[0] == pytest.approx(1.0)
    assert all(a > b for a, b in itertools.pairwise(scores))


def test_ssim_of_anticorrelated_structure_is_negative():
    x = torch.rand(1, 1, 1, 16, 16)
    assert frame_ssim(x, 1 - x, value_range=(0.0, 1.0)).item() < 0


def test_bad_inputs_name_the_argument():
    x = _video()
    with pytest.raises(ValueError, match="same shape"):
        frame_psnr(x, x[:, :2])
    with pytest.raises(ValueError, match="value_range"):
        frame_psnr(x, x, value_range=(1.0, 1.0))
    with pytest.raises(ValueError, match="win_size"):
        frame_ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="videos"):
        video_ssim(torch.zeros(3, 16, 16), torch.zeros(3, 16, 16))
