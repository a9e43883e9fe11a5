"""Distances between two sets of features: the Fréchet distance (FVD, FID) and the kernel distance (KVD, KID).

Both take feature matrices ``(n, d)`` and ``(m, d)`` (numpy arrays or tensors) and compute in float64 on the
CPU. No scipy: the matrix square root comes from symmetric eigendecompositions (:func:`sqrtm_psd`).

- Fréchet distance between the Gaussians fitted to the two sets (Heusel et al. 2017; Unterthiner et al. 2018):
  ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``, with ``tr (S1 S2)^(1/2) = tr (S1^(1/2) S2 S1^(1/2))^(1/2)``;
  the product on the right is symmetric positive semi-definite, so its square root is well defined and stable.
- Kernel distance: the unbiased estimator of the squared MMD with the polynomial kernel
  ``k(x, y) = (x . y / d + 1)^3``, averaged over random subsets (Binkowski et al. 2018, "Demystifying MMD GANs").
"""

from __future__ import annotations

import numpy as np
import torch

from vidiff.arguments import check_int

__all__ = [
    "frechet_distance",
    "frechet_distance_from_stats",
    "gaussian_stats",
    "kernel_distance",
    "kernel_distance_subsets",
    "polynomial_kernel",
    "sqrtm_psd",
    "trace_sqrt_product",
]


def _as_features(name: str, feats: torch.Tensor | np.ndarray, min_rows: int = 1) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(feats) if not isinstance(feats, torch.Tensor) else feats.detach())
    t = t.to(device="cpu", dtype=torch.float64)
    if t.ndim != 2:
        raise ValueError(f"{name}: expected a feature matrix of shape (n, d), got shape {tuple(t.shape)}")
    if t.shape[0] < min_rows:
        raise ValueError(f"{name}: expected at least {min_rows} feature rows, got {t.shape[0]}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: features contain NaN or inf")
    return t


def gaussian_stats(feats: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(d,)`` and unbiased covariance ``(d, d)`` (divides by ``n - 1``) of features ``(n, d)``, float64."""
    f = _as_features("feats", feats, min_rows=2)
    mu = f.mean(dim=0)
    centred = f - mu
    sigma = centred.T @ centred / (f.shape[0] - 1)
    return mu, sigma


def _sym(a: torch.Tensor) -> torch.Tensor:
    return (a + a.T) / 2


def sqrtm_psd(mat: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix ``(d, d)`` by eigendecomposition (float64).

    ``mat = V diag(w) V^T -> V diag(sqrt(max(w, 0))) V^T``; small negative eigenvalues from round-off are clipped.
    """
    m = torch.as_tensor(mat, dtype=torch.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"mat: expected a square matrix, got shape {tuple(m.shape)}")
    w, v = torch.linalg.eigh(_sym(m))
    return _sym((v * w.clamp(min=0).sqrt()) @ v.T)


def trace_sqrt_product(sigma1: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    """``tr (S1 S2)^(1/2)`` for PSD ``S1, S2`` as ``sum sqrt(eig(S1^(1/2) S2 S1^(1/2)))`` (a float64 scalar)."""
    s1 = sqrtm_psd(sigma1)
    inner = _sym(s1 @ torch.as_tensor(sigma2, dtype=torch.float64) @ s1)
    return torch.linalg.eigvalsh(inner).clamp(min=0).sqrt().sum()


def frechet_distance_from_stats(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    """Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    Args:
        mu1: ``(d,)`` mean.
        sigma1: ``(d, d)`` covariance.
        mu2: ``(d,)`` mean.
        sigma2: ``(d, d)`` covariance.

    Returns:
        ``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr (S1 S2)^(1/2)`` (>= 0; tiny negatives from round-off clip to 0).
    """
    mu1, mu2 = (torch.as_tensor(m, dtype=torch.float64) for m in (mu1, mu2))
    sigma1, sigma2 = (torch.as_tensor(s, dtype=torch.float64) for s in (sigma1, sigma2))
    d = mu1.shape[0]
    for name, m in (("mu1", mu1), ("mu2", mu2)):
        if m.shape != (d,):
            raise ValueError(f"{name}: expected shape ({d},), got {tuple(m.shape)}")
    for name, s in (("sigma1", sigma1), ("sigma2", sigma2)):
        if s.shape != (d, d):
            raise ValueError(f"{name}: expected shape ({d}, {d}), got {tuple(s.shape)}")
    diff = (mu1 - mu2).pow(2).sum()
    value = diff + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt_product(sigma1, sigma2)
    return max(float(value), 0.0)


def frechet_distance(feats1: torch.Tensor | np.ndarray, feats2: torch.Tensor | np.ndarray) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets (FVD when the features are I3D's).

    Args:
        feats1: ``(n, d)`` features, n >= 2.
        feats2: ``(m, d)`` features, m >= 2.

    Returns:
        The distance (float, >= 0); 0 for identical sets.
    """
    f1 = _as_features("feats1", feats1, min_rows=2)
    f2 = _as_features("feats2", feats2, min_rows=2)
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feats2: expected feature dimension {f1.shape[1]} (as feats1), got {f2.shape[1]}")
    return frechet_distance_from_stats(*gaussian_stats(f1), *gaussian_stats(f2))


def polynomial_kernel(
    x: torch.Tensor, y: torch.Tensor, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> torch.Tensor:
    """``k(x, y) = (gamma x . y + coef0)^degree`` for all pairs; ``gamma`` defaults to ``1 / d``.

    Args:
        x: ``(n, d)``.
        y: ``(m, d)``.
        degree: polynomial degree (3 in KID).
        gamma: scale of the dot product (``None``: ``1 / d``).
        coef0: additive constant (1 in KID).

    Returns:
        ``(n, m)`` kernel matrix.
    """
    check_int("degree", degree)
    g = 1.0 / x.shape[1] if gamma is None else gamma
    base = g * (x @ y.T) + coef0
    out = base
    for _ in range(degree - 1):  # repeated products: much faster than a float pow on the CPU
        out = out * base
    return out


def kernel_distance_subsets(
    feats1: torch.Tensor | np.ndarray,
    feats2: torch.Tensor | np.ndarray,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Unbiased MMD^2 estimates with the polynomial kernel on random subsets (Binkowski et al. 2018).

    For each subset, ``m = min(subset_size, n1, n2)`` rows are drawn without replacement from each set and
    ``MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m-1)) + sum_{i != j} k(y_i, y_j) / (m (m-1))
    - 2 sum_{i, j} k(x_i, y_j) / m^2``.

    Args:
        feats1: ``(n1, d)`` features, n1 >= 2.
        feats2: ``(n2, d)`` features, n2 >= 2.
        num_subsets: number of random subsets.
        subset_size: rows per subset (clipped to the smaller set).
        degree: kernel degree.
        gamma: kernel scale (``None``: ``1 / d``).
        coef0: kernel constant.
        generator: random generator for the subsets (``None``: a fixed seed 0, so results are reproducible).

    Returns:
        ``(num_subsets,)`` float64 estimates (each may be slightly negative: the estimator is unbiased).
    """
    f1 = _as_features("feats1", feats1, min_rows=2)
    f2 = _as_features("feats2", feats2, min_rows=2)
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feats2: expected feature dimension {f1.shape[1]} (as feats1), got {f2.shape[1]}")
    if num_subsets < 1:
        raise ValueError(f"num_subsets: expected >= 1, got {num_subsets}")
    if subset_size < 2:
        raise ValueError(f"subset_size: expected >= 2, got {subset_size}")
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    m = min(subset_size, f1.shape[0], f2.shape[0])
    out = torch.empty(num_subsets, dtype=torch.float64)
    for s in range(num_subsets):
        x = f1[torch.randperm(f1.shape[0], generator=generator)[:m]]
        y = f2[torch.randperm(f2.shape[0], generator=generator)[:m]]
        kxx = polynomial_kernel(x, x, degree, gamma, coef0)
        kyy = polynomial_kernel(y, y, degree, gamma, coef0)
        kxy = polynomial_kernel(x, y, degree, gamma, coef0)
        off = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        out[s] = off - 2 * kxy.sum() / (m * m)
    return out


def kernel_distance(
    feats1: torch.Tensor | np.ndarray,
    feats2: torch.Tensor | np.ndarray,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    generator: torch.Generator | None = None,
) -> float:
    """Kernel distance (KVD with I3D features, KID with Inception features): the mean of
    :func:`kernel_distance_subsets` with the KID kernel ``(x . y / d + 1)^3``.

    Args:
        feats1: ``(n1, d)`` features.
        feats2: ``(n2, d)`` features.
        num_subsets: number of random subsets (100 as in KID).
        subset_size: rows per subset (1000 as in KID; clipped to the smaller set).
        generator: random generator (``None``: seed 0).

    Returns:
        The mean unbiased MMD^2 estimate (float; about 0 for identical distributions, may be slightly negative).
    """
    est = kernel_distance_subsets(
        feats1, feats2, num_subsets=num_subsets, subset_size=subset_size, generator=generator
    )
    return float(est.mean())
