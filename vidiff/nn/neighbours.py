"""Nearest observed frames as extra input channels: the shortest path from the given frames to every frame.

For each frame ``i`` of a clip, the ``n`` observed frames nearest to it in the video (by ``|frame_idx_j -
frame_idx_i|``, ties to the earlier slot) are stacked as input features of frame ``i``: their pixels (or latents),
a *present* channel (0 where the clip has fewer than ``n`` observed frames) and the signed log distance
``sign(d) log(1 + |d|) / 4`` with ``d = frame_idx_j - frame_idx_i``. A per-frame convolution then sees the
context directly, as image-to-video models concatenate their conditioning frame to every frame (Blattmann et
al. 2023, Stable Video Diffusion; Xing et al. 2023, DynamiCrafter), while temporal attention keeps carrying
information between all frames. With nothing observed the features are zero.
"""

from __future__ import annotations

import torch


def neighbour_channels(channels: int, n: int) -> int:
    """Feature channels that :func:`nearest_observed` returns for ``channels``-channel frames and ``n`` neighbours."""
    return n * (channels + 2)


def nearest_observed(x: torch.Tensor, frame_idx: torch.Tensor, observed: torch.Tensor, n: int) -> torch.Tensor:
    """``(b, t, c, h, w)`` -> ``(b, t, n (c + 2), h, w)``: each frame's ``n`` nearest observed frames (see module).

    Args:
        x: the clip, observed frames clean.
        frame_idx: ``(b, t)`` positions in the video.
        observed: ``(b, t)`` bool.
        n: neighbours per frame (at most ``t`` are distinct; extra slots are absent).
    """
    b, t, c, h, w = x.shape
    rel = (frame_idx[:, None, :] - frame_idx[:, :, None]).to(torch.float32)  # (b, i, j): d = f_j - f_i
    dist = rel.abs().masked_fill(~observed[:, None, :].bool(), float("inf"))
    k = min(n, t)
    order = torch.sort(dist, dim=2, stable=True).indices[:, :, :k]  # (b, t, k)
    present = torch.isfinite(dist.gather(2, order))  # (b, t, k)
    picked = x[torch.arange(b, device=x.device)[:, None, None], order]  # (b, t, k, c, h, w)
    keep = present.to(x.dtype)
    picked = picked * keep[..., None, None, None]
    d = rel.gather(2, order)
    signed = (torch.sign(d) * torch.log1p(d.abs()) / 4).to(x.dtype) * keep
    scalars = torch.stack([keep, signed], dim=3)[..., None, None].expand(b, t, k, 2, h, w)
    feats = torch.cat([picked, scalars], dim=3)  # (b, t, k, c + 2, h, w)
    if k < n:
        feats = torch.cat([feats, feats.new_zeros(b, t, n - k, c + 2, h, w)], dim=2)
    return feats.flatten(2, 3)
