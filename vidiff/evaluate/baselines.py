"""Simple baselines scored beside a model on the same ground truth.

* ``copy-last``: every frame not given repeats the nearest given frame before it (the first given frame
  before the first one). For prediction that is the last observed frame held still; its centre error at horizon
  step ``h`` is exactly the distance each object travels in ``h`` frames.
* ``linear`` for prediction: *linear extrapolation of detected centres*. Objects are detected in the given frames;
  each colour's velocity comes from its two latest detections and its centre is carried on in a straight line
  (no bounces, so it is exact until an object reaches a wall). It predicts centres, not pixels, so it is scored
  on centre error and miss rate only.
* ``linear`` for interpolation: the linear blend of the given keyframes, frame ``t`` between keyframes ``a`` and
  ``b`` is ``(1 - w) x_a + w x_b`` with ``w = (t - a) / (b - a)`` (scored on every metric).
* ``noise``: uniform noise in [-1, 1] in every frame not given.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import torch

from vidiff.metrics import VideoDetections

__all__ = ["copy_last", "linear_blend", "noise_frames", "extrapolate_centres", "centre_error"]


def _check(videos: torch.Tensor, given: Sequence[int]) -> list[int]:
    if videos.ndim != 5:
        raise ValueError(f"videos: expected (n, t, c, h, w), got {tuple(videos.shape)}")
    given = sorted(int(g) for g in given)
    if not given:
        raise ValueError("given: this baseline needs at least one given frame")
    t = videos.shape[1]
    bad = [g for g in given if not 0 <= g < t]
    if bad:
        raise ValueError(f"given: expected frame indices in [0, {t}), got {bad}")
    return given


def copy_last(videos: torch.Tensor, given: Sequence[int]) -> torch.Tensor:
    """Hold the latest given frame.

    Args:
        videos: ``(n, t, c, h, w)`` ground truth (only the ``given`` frames are read).
        given: indices of the given frames.

    Returns:
        ``(n, t, c, h, w)``: frame ``i`` is the given frame ``max(g <= i)`` (or the first given frame).
    """
    given = _check(videos, given)
    source = [given[max(bisect.bisect_right(given, i) - 1, 0)] for i in range(videos.shape[1])]
    return videos[:, source].clone()


def linear_blend(videos: torch.Tensor, given: Sequence[int]) -> torch.Tensor:
    """Blend linearly between consecutive given frames (hold the end ones outside them).

    Args:
        videos: ``(n, t, c, h, w)`` ground truth (only the ``given`` frames are read).
        given: indices of the given frames.

    Returns:
        ``(n, t, c, h, w)``; given frames are unchanged.
    """
    given = _check(videos, given)
    out = videos.clone()
    for i in range(videos.shape[1]):
        j = bisect.bisect_right(given, i)
        if j == 0 or j == len(given):  # before the first / after the last keyframe: hold it
            out[:, i] = videos[:, given[0] if j == 0 else given[-1]]
            continue
        a, b = given[j - 1], given[j]
        if a == i:
            continue
        w = (i - a) / (b - a)
        out[:, i] = (1 - w) * videos[:, a] + w * videos[:, b]
    return out


def noise_frames(videos: torch.Tensor, given: Sequence[int], generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform noise in [-1, 1] in every frame not given (given frames kept).

    Args:
        videos: ``(n, t, c, h, w)`` ground truth.
        given: indices of the given frames (may be empty).
        generator: random source.
    """
    out = torch.rand(videos.shape, generator=generator, dtype=videos.dtype) * 2 - 1
    given = [int(g) for g in given]
    if given:
        out[:, given] = videos[:, given]
    return out


def extrapolate_centres(
    det: VideoDetections, given: Sequence[int], targets: Sequence[int]
) -> dict[str, torch.Tensor]:
    """Carry each detected object on in a straight line from its two latest detections.

    Args:
        det: detections of the given frames only (``det[j]`` is frame ``given[j]``).
        given: the frame indices of ``det``'s frames.
        targets: frame indices to predict.

    Returns:
        colour name -> ``(k, 2)`` float64 predicted ``(x, y)`` centres at the ``k`` targets. A colour found once
        is held still; colours never found are absent (scored as missed).
    """
    given = [int(g) for g in given]
    if len(det) != len(given):
        raise ValueError(f"given: expected {len(det)} indices (one per detected frame), got {len(given)}")
    seen: dict[str, list[tuple[int, tuple[float, float]]]] = {}
    for j, frame in enumerate(det.frames):
        for d in frame:
            seen.setdefault(d.colour, []).append((given[j], d.centre))
    tgt = torch.tensor([float(t) for t in targets], dtype=torch.float64)
    out: dict[str, torch.Tensor] = {}
    for colour, hits in seen.items():
        hits.sort(key=lambda h: h[0])
        f1, c1 = hits[-1]
        c1t = torch.tensor(c1, dtype=torch.float64)
        if len(hits) >= 2:
            f0, c0 = hits[-2]
            v = (c1t - torch.tensor(c0, dtype=torch.float64)) / (f1 - f0)
        else:
            v = torch.zeros(2, dtype=torch.float64)
        out[colour] = c1t[None] + (tgt - f1)[:, None] * v[None]
    return out


def centre_error(
    predicted: dict[str, torch.Tensor], centres: torch.Tensor, colours: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre error of predicted centres, with :func:`vidiff.metrics.prediction_error`'s conventions.

    Args:
        predicted: colour -> ``(k, 2)`` predicted centres.
        centres: ``(m, k, 2)`` ground-truth centres of the ``m`` objects at the same ``k`` frames.
        colours: the ``m`` objects' colours.

    Returns:
        ``(error (k,), miss_rate (k,))`` float64: mean distance over predicted objects (``nan`` if none) and the
        fraction of ground-truth objects without a prediction.
    """
    centres = torch.as_tensor(centres, dtype=torch.float64)
    m, k = centres.shape[:2]
    if m != len(colours):
        raise ValueError(f"colours: expected {m} names (one per object), got {len(colours)}")
    dists = [torch.linalg.vector_norm(predicted[c] - centres[i], dim=-1) for i, c in enumerate(colours) if c in predicted]
    if dists:
        error = torch.stack(dists).mean(dim=0)
    else:
        error = torch.full((k,), float("nan"), dtype=torch.float64)
    missed = sum(c not in predicted for c in colours)
    return error, torch.full((k,), missed / max(m, 1), dtype=torch.float64)
