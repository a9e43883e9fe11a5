"""Fréchet and kernel distances against closed forms on random features."""

import math

import numpy as np
import pytest
import torch

from vidiff.metrics.frechet import (
    frechet_distance,
    frechet_distance_from_stats,
    gaussian_stats,
    kernel_distance,
    kernel_distance_subsets,
    polynomial_kernel,
    sqrtm_psd,
    trace_sqrt_product,
)


def _random_psd(d: int, g: torch.Generator) -> torch.Tensor:
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def test_sqrtm_psd_squares_back_and_is_symmetric():
    g = torch.Generator().manual_seed(1)
    s = _random_psd(12, g)
    r = sqrtm_psd(s)
    torch.testing.assert_close(r @ r, s)
    torch.testing.assert_close(r, r.T)
    assert torch.linalg.eigvalsh(r).min() > 0
    # rank-deficient PSD matrix: still a valid square root
    v = torch.randn(12, 3, generator=g, dtype=torch.float64)
    low = v @ v.T
    r = sqrtm_psd(low)
    torch.testing.assert_close(r @ r, low)


def test_trace_sqrt_product_matches_general_eigenvalues_for_non_commuting_matrices():
    g = torch.Generator().manual_seed(2)
    s1, s2 = _random_psd(10, g), _random_psd(10, g)
    assert not torch.allclose(s1 @ s2, s2 @ s1)
    # S1 S2 is similar to S1^(1/2) S2 S1^(1/2): real non-negative eigenvalues; tr sqrt = sum of their roots
    eig = torch.linalg.eigvals(s1 @ s2)
    expected = eig.real.clamp(min=0).sqrt().sum()
    torch.testing.assert_close(trace_sqrt_product(s1, s2), expected)


def test_frechet_identical_sets_is_zero():
    x = torch.randn(300, 8)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(x.numpy(), x.numpy()) == pytest.approx(0.0, abs=1e-9)


def test_frechet_from_stats_diagonal_closed_form():
    g = torch.Generator().manual_seed(3)
    d = 16
    mu1, mu2 = (
        torch.randn(d, generator=g, dtype=torch.float64),
        torch.randn(d, generator=g, dtype=torch.float64),
    )
    v1 = torch.rand(d, generator=g, dtype=torch.float64) + 0.1
    v2 = torch.rand(d, generator=g, dtype=torch.float64) + 0.1
    expected = float((mu1 - mu2).pow(2).sum() + (v1.sqrt() - v2.sqrt()).pow(2).sum())
    got = frechet_distance_from_stats(mu1, torch.diag(v1), mu2, torch.diag(v2))
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_full_covariance_is_rotation_invariant():
    g = torch.Generator().manual_seed(4)
    d = 6
    s1, s2 = _random_psd(d, g), _random_psd(d, g)
    mu1, mu2 = torch.randn(d, generator=g, dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    a = frechet_distance_from_stats(mu1, s1, mu2, s2)
    b = frechet_distance_from_stats(q @ mu1, q @ s1 @ q.T, q @ mu2, q @ s2 @ q.T)
    assert a == pytest.approx(b, rel=1e-9)
    assert frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(
        frechet_distance_from_stats(mu2, s2, mu1, s1), rel=1e-9
    )


def test_frechet_shifted_identity_gaussians_give_squared_shift():
    g = torch.Generator().manual_seed(5)
    n, d = 20000, 4
    m = torch.tensor([1.0, -0.5, 0.25, 0.0], dtype=torch.float64)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(n, d, generator=g, dtype=torch.float64) + m
    # |m|^2 = 1.3125 plus sampling noise of the covariance term (O(d^2 / n))
    assert frechet_distance(x, y) == pytest.approx(float(m.pow(2).sum()), abs=0.05)


def test_frechet_sampled_diagonal_gaussians_match_closed_form():
    g = torch.Generator().manual_seed(6)
    n, d = 20000, 3
    sd1, sd2 = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([0.5, 1.0, 1.5])
    mu2 = torch.tensor([0.5, 0.0, -1.0])
    x = torch.randn(n, d, generator=g) * sd1
    y = torch.randn(n, d, generator=g) * sd2 + mu2
    expected = float(mu2.pow(2).sum() + (sd1 - sd2).pow(2).sum())
    assert frechet_distance(x, y) == pytest.approx(expected, rel=0.03)


def test_gaussian_stats_unbiased_covariance():
    x = torch.randn(50, 5, dtype=torch.float64)
    mu, sigma = gaussian_stats(x)
    torch.testing.assert_close(mu, x.mean(0))
    torch.testing.assert_close(sigma, torch.from_numpy(np.cov(x.numpy(), rowvar=False)))


def test_polynomial_kernel_definition():
    x, y = torch.randn(3, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    k = polynomial_kernel(x, y)
    assert k.shape == (3, 5)
    assert k[1, 2].item() == pytest.approx((float(x[1] @ y[2]) / 4 + 1) ** 3)


def _poly_mmd_shifted_identity(a: float, d: int) -> float:
    """Closed-form MMD^2 with k = (x.y/d + 1)^3 between N(0, I) and N(m, I), |m|^2 = a (moments of x.y)."""
    # E (s+1)^3 = E s^3 + 3 E s^2 + 3 E s + 1 with s = x.y / d
    kxx = 1 + 3 * d / d**2  # x, x' ~ N(0, I): E s = 0, E s^2 = 1/d, E s^3 = 0
    kyy = 1 + 3 * a / d + 3 * (a**2 + 2 * a + d) / d**2 + (a**3 + 6 * a**2 + 3 * a * d + 6 * a) / d**3
    kxy = 1 + 3 * (a + d) / d**2  # x ~ N(0, I), y ~ N(m, I): E s = 0, E s^2 = (a + d)/d^2, E s^3 = 0
    return kxx + kyy - 2 * kxy


def test_kernel_distance_identical_distributions_is_about_zero():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(1000, 8, generator=g)
    y = torch.randn(1000, 8, generator=g)
    est = kernel_distance_subsets(x, y, num_subsets=10, subset_size=300)
    assert est.shape == (10,)
    assert abs(est.mean().item()) < 3 * est.std().item() / math.sqrt(10) + 1e-3
    assert abs(kernel_distance(x, y, num_subsets=10, subset_size=300)) < 0.02


def test_kernel_distance_shifted_gaussians_match_polynomial_closed_form():
    g = torch.Generator().manual_seed(8)
    d, n = 8, 1500
    m = torch.zeros(d)
    m[:2] = torch.tensor([1.0, 1.0])  # |m|^2 = 2
    x = torch.randn(n, d, generator=g)
    y = torch.randn(n, d, generator=g) + m
    expected = _poly_mmd_shifted_identity(2.0, d)
    got = kernel_distance(x, y, num_subsets=10, subset_size=300)
    assert got == pytest.approx(expected, rel=0.1)


def test_kernel_distance_is_deterministic_by_default_and_clips_subset_size():
    x, y = torch.randn(30, 4), torch.randn(40, 4) + 1
    a = kernel_distance(x, y, num_subsets=5)
    assert a == kernel_distance(x, y, num_subsets=5)  # fixed default seed; subset 1000 clipped to 30


def test_bad_features_name_the_argument():
    with pytest.raises(ValueError, match="feats1"):
        frechet_distance(torch.randn(10), torch.randn(10, 2))
    with pytest.raises(ValueError, match="feature dimension"):
        frechet_distance(torch.randn(10, 3), torch.randn(10, 2))
    with pytest.raises(ValueError, match="NaN"):
        kernel_distance(torch.full((5, 2), math.nan), torch.randn(5, 2))
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(torch.randn(1, 3), torch.randn(5, 3))
