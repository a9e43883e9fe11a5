"""FVD and KVD of video sets: I3D features of preprocessed videos, then :mod:`vidiff.metrics.frechet`.

Protocol (docs/metrics.md, after Unterthiner et al. 2018 and StyleGAN-V): each video is a ``(t, c, h, w)``
clip in ``[-1, 1]`` of ``t = 16`` frames (at least 9, the network's minimum); every frame is resized
bilinearly to 224 x 224 (grey videos are repeated to RGB); the features are the 400 Kinetics logits of
I3D averaged over time. Report FVD with the number of videos in each set (2048 is the common choice;
FVD is biased upwards for small sets, so only compare numbers computed with the same counts).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from einops import rearrange

from vidiff.metrics.frechet import frechet_distance, kernel_distance
from vidiff.metrics.i3d import MIN_FRAMES, InceptionI3d

__all__ = ["FVD_FRAMES", "I3D_RESOLUTION", "fvd", "i3d_features", "kvd", "preprocess_for_i3d"]

#: Frame size I3D sees and the clip length of the standard protocol.
I3D_RESOLUTION = 224
FVD_FRAMES = 16

Videos = torch.Tensor | Iterable[torch.Tensor]


def preprocess_for_i3d(
    videos: torch.Tensor, *, value_range: tuple[float, float] = (-1.0, 1.0), resolution: int = I3D_RESOLUTION
) -> torch.Tensor:
    """Videos ``(b, t, c, h, w)`` -> I3D input ``(b, 3, t, resolution, resolution)`` in ``[-1, 1]``.

    Frames are mapped from ``value_range`` to ``[-1, 1]``, resized bilinearly (no antialiasing, as TF's
    ``resize_bilinear`` in the FVD reference), and grey (``c = 1``) videos are repeated to three channels.
    """
    if videos.ndim != 5 or videos.shape[2] not in (1, 3):
        raise ValueError(f"videos: expected (b, t, c, h, w) with c = 1 or 3, got {tuple(videos.shape)}")
    b, t = videos.shape[:2]
    if t < MIN_FRAMES:
        raise ValueError(f"videos: I3D needs at least {MIN_FRAMES} frames per video (FVD uses 16), got t={t}")
    lo, hi = (float(v) for v in value_range)
    x = (videos.float() - lo) / (hi - lo) * 2 - 1
    x = rearrange(x, "b t c h w -> (b t) c h w")
    if x.shape[-2:] != (resolution, resolution):
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return rearrange(x.clamp(-1, 1), "(b t) c h w -> b c t h w", b=b)


def _batches(videos: Videos, batch_size: int) -> Iterable[torch.Tensor]:
    if isinstance(videos, torch.Tensor):
        yield from videos.split(batch_size)
    else:
        for v in videos:
            yield from v.split(batch_size)


@torch.no_grad()
def i3d_features(
    videos: Videos,
    i3d: InceptionI3d,
    *,
    batch_size: int = 8,
    value_range: tuple[float, float] = (-1.0, 1.0),
    pre_logits: bool = False,
) -> torch.Tensor:
    """I3D features of a set of videos, computed in batches on the network's device.

    Args:
        videos: one ``(n, t, c, h, w)`` tensor or an iterable of such batches (e.g. a generator of samples).
        i3d: the network (:func:`vidiff.metrics.i3d.load_i3d`).
        batch_size: videos per forward pass.
        value_range: ``(lo, hi)`` of the videos.
        pre_logits: return the 1024-d pooled features instead of the 400-d logits (FVD uses the logits).

    Returns:
        ``(n, 400)`` (or ``(n, 1024)``) float32 features on the CPU.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
    was_training = i3d.training
    i3d.eval()
    device = next(i3d.parameters()).device
    feats = []
    for batch in _batches(videos, batch_size):
        x = preprocess_for_i3d(batch, value_range=value_range).to(device)
        feats.append((i3d.pooled_features(x) if pre_logits else i3d(x)).float().cpu())
    i3d.train(was_training)
    if not feats:
        raise ValueError("videos: expected at least one video, got none")
    return torch.cat(feats)


def fvd(
    real_videos: Videos,
    fake_videos: Videos,
    i3d: InceptionI3d,
    *,
    batch_size: int = 8,
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> float:
    """Fréchet Video Distance: the Fréchet distance between I3D logits of real and generated videos.

    Args:
        real_videos: ``(n, t, c, h, w)`` tensor or iterable of batches, ``t >= 9`` (16 by the protocol).
        fake_videos: the same for generated videos.
        i3d: the network from :func:`vidiff.metrics.i3d.load_i3d`.
        batch_size: videos per forward pass.
        value_range: ``(lo, hi)`` of the videos.

    Returns:
        FVD (float, >= 0).
    """
    f_real = i3d_features(real_videos, i3d, batch_size=batch_size, value_range=value_range)
    f_fake = i3d_features(fake_videos, i3d, batch_size=batch_size, value_range=value_range)
    return frechet_distance(f_real, f_fake)


def kvd(
    real_videos: Videos,
    fake_videos: Videos,
    i3d: InceptionI3d,
    *,
    batch_size: int = 8,
    value_range: tuple[float, float] = (-1.0, 1.0),
    num_subsets: int = 100,
    subset_size: int = 1000,
) -> float:
    """Kernel Video Distance: the polynomial-kernel MMD^2 (KID's estimator) between I3D logits.

    Args:
        real_videos: ``(n, t, c, h, w)`` tensor or iterable of batches.
        fake_videos: the same for generated videos.
        i3d: the network from :func:`vidiff.metrics.i3d.load_i3d`.
        batch_size: videos per forward pass.
        value_range: ``(lo, hi)`` of the videos.
        num_subsets: random subsets averaged.
        subset_size: videos per subset (clipped to the smaller set).

    Returns:
        KVD (float; about 0 for matching distributions).
    """
    f_real = i3d_features(real_videos, i3d, batch_size=batch_size, value_range=value_range)
    f_fake = i3d_features(fake_videos, i3d, batch_size=batch_size, value_range=value_range)
    return kernel_distance(f_real, f_fake, num_subsets=num_subsets, subset_size=subset_size)
