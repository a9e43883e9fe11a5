"""Timestep and relative frame-position embeddings."""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal timestep embedding, laid out as latent-diffusion's (cosines first, then sines).

    Args:
        timesteps: ``(n,)`` diffusion steps, long or float (fractional steps are allowed).
        dim: Embedding width.
        max_period: Longest period of the sinusoids.

    Returns:
        ``(n, dim)`` float32 embedding (an odd ``dim`` gets a zero last column).
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half
    )
    args = timesteps.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def relative_frame_features(frame_idx: torch.Tensor) -> torch.Tensor:
    """Signed log-distance between frames: ``sign(d) * log(1 + |d|)`` with ``d = frame_idx[j] - frame_idx[i]``.

    Log scaling keeps gaps of 1 and of several hundred frames in one well-conditioned range (0.69 .. ~6).

    Args:
        frame_idx: ``(b, t)`` frame positions in the long video.

    Returns:
        ``(b, t, t, 1)`` float32 features for query frame ``i`` (axis 1) and key frame ``j`` (axis 2).
    """
    d = (frame_idx[:, None, :] - frame_idx[:, :, None]).float()
    return (torch.sign(d) * torch.log1p(d.abs()))[..., None]


class RelativePositionBias(nn.Module):
    """Learned per-head attention bias from signed frame distances (an MLP on log-scaled distance).

    Depends on ``frame_idx`` differences only, so shifting all positions leaves it unchanged and permuting the
    frames permutes it accordingly.

    Args:
        heads: Number of attention heads (one bias per head).
        hidden: Width of the MLP's hidden layer.
    """

    def __init__(self, heads: int, hidden: int = 32) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(1, hidden), nn.SiLU(), nn.Linear(hidden, heads))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Map ``(b, t, t, 1)`` features (:func:`relative_frame_features`) to a ``(b, heads, t, t)`` bias."""
        return rearrange(self.mlp(features.to(self.mlp[0].weight.dtype)), "b i j n -> b n i j")
