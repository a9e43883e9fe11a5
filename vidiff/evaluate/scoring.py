"""Score generated videos of a task against the ground truth (Shapes-world scores and pixel metrics).

Every score looks only at the task's *scored* frames (the generated ones):

* ``persistence``: fraction of scored frames whose detected colours equal the ground truth's colours
  (conditioned tasks) or the first scored frame's (unconditional, text); see :func:`vidiff.metrics.persistence`.
* ``motion_consistency``: :func:`vidiff.metrics.motion_consistency` over the scored frames.
* conditioned tasks: ``centre_error`` (pixels, objects matched by colour; missed objects excluded) and
  ``miss_rate``, per scored step (``*_per_step`` lists) and their means; with pixels, ``psnr`` (dB, capped at
  :data:`PSNR_CAP`) and ``ssim`` per step and their means.
* text: ``caption_colour``, ``caption_shape``, ``caption_precision`` (:func:`vidiff.metrics.caption_accuracy`).

Means are over videos (and steps), ignoring ``nan`` (e.g. a step where no object was found has no centre error,
only a miss).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from vidiff.evaluate.baselines import centre_error
from vidiff.evaluate.tasks import TaskSpec
from vidiff.evaluate.truth import GroundTruth
from vidiff.metrics import (
    VideoDetections,
    caption_accuracy,
    detect_objects,
    frame_psnr,
    frame_ssim,
    motion_consistency,
    persistence,
    prediction_error,
)

__all__ = ["PSNR_CAP", "detect_many", "score_videos", "score_centres", "nanmean"]

#: PSNR of identical frames is infinite; it is capped here so that means stay finite.
PSNR_CAP = 60.0


def nanmean(values: torch.Tensor | Sequence[float]) -> float:
    """Mean ignoring ``nan`` (``nan`` if every value is)."""
    t = torch.as_tensor(values, dtype=torch.float64)
    keep = ~t.isnan()
    return float(t[keep].mean()) if keep.any() else math.nan


def detect_many(videos: torch.Tensor, chunk: int = 1024) -> list[VideoDetections]:
    """:func:`vidiff.metrics.detect_objects` of each of ``videos`` ``(n, t, 3, h, w)``, run on up to ``chunk``
    frames at a time (one call per frame batch is much faster than one per short video)."""
    n, t, _, h, w = videos.shape
    flat = videos.reshape(n * t, *videos.shape[2:]).float()
    frames: list = []
    for start in range(0, n * t, max(chunk, 1)):
        frames += detect_objects(flat[start : start + chunk]).frames
    return [VideoDetections(tuple(frames[i * t : (i + 1) * t]), h, w) for i in range(n)]


def _steps(rows: list[torch.Tensor], name: str, out: dict) -> None:
    """``name`` (mean over everything) and ``name_per_step`` (mean over videos) from ``(k,)`` rows."""
    table = torch.stack(rows)  # (n, k)
    out[name] = nanmean(table.flatten())
    out[f"{name}_per_step"] = [nanmean(table[:, j]) for j in range(table.shape[1])]


def _ssim_window(h: int, w: int) -> int:
    size = min(11, h, w)
    return size if size % 2 else size - 1


def score_videos(
    videos: torch.Tensor, truth: GroundTruth, spec: TaskSpec, *, pixels: bool = True
) -> dict[str, float | list[float]]:
    """All scores of one method's videos for a task (module docstring), averaged over videos.

    Args:
        videos: ``(n, T, 3, h, w)`` in [-1, 1], the same ``n`` videos and frames as ``truth``.
        truth: the ground truth.
        spec: the task.
        pixels: also compute PSNR and SSIM against the ground truth (conditioned tasks only).

    Returns:
        flat dict of floats and per-step lists (see the module docstring for the keys).
    """
    if videos.shape != truth.videos.shape:
        raise ValueError(f"videos: expected the ground truth's shape {tuple(truth.videos.shape)}, got {tuple(videos.shape)}")
    scored = list(spec.scored)
    conditioned = bool(spec.given)
    per: dict[str, list[float]] = {"persistence": [], "motion_consistency": []}
    caption: dict[str, list[float]] = {"caption_colour": [], "caption_shape": [], "caption_precision": []}
    err_rows, miss_rows = [], []
    for i, det in enumerate(detect_many(videos[:, scored])):
        per["persistence"].append(persistence(det, reference=truth.colours[i] if spec.reference_colours else None))
        per["motion_consistency"].append(motion_consistency(det))
        if conditioned:
            pe = prediction_error(det, truth.centres[i][:, scored], truth.colours[i])
            err_rows.append(pe.error)
            miss_rows.append(pe.miss_rate)
        if spec.uses_caption:
            cs = caption_accuracy(det, truth.captions[i])
            caption["caption_colour"].append(cs.colour)
            caption["caption_shape"].append(cs.shape)
            caption["caption_precision"].append(cs.precision)
    out: dict[str, float | list[float]] = {k: nanmean(v) for k, v in per.items()}
    if conditioned:
        _steps(err_rows, "centre_error", out)
        _steps(miss_rows, "miss_rate", out)
        if pixels:
            x, y = videos[:, scored].float().clamp(-1, 1), truth.videos[:, scored].float()
            _steps(list(frame_psnr(x, y, max_db=PSNR_CAP)), "psnr", out)
            win = _ssim_window(*x.shape[-2:])
            _steps(list(frame_ssim(x, y, win_size=win, sigma=1.5 * win / 11)), "ssim", out)
    if spec.uses_caption:
        out.update({k: nanmean(v) for k, v in caption.items()})
    return out


def score_centres(predicted: Sequence[dict[str, torch.Tensor]], truth: GroundTruth, spec: TaskSpec) -> dict:
    """Centre error and miss rate of predicted centres (the ``linear`` extrapolation baseline).

    Args:
        predicted: per video, colour -> ``(k, 2)`` centres at the ``k`` scored frames.
        truth: the ground truth.
        spec: the task.
    """
    if len(predicted) != len(truth):
        raise ValueError(f"predicted: expected {len(truth)} videos, got {len(predicted)}")
    scored = list(spec.scored)
    errs, misses = [], []
    for i, pred in enumerate(predicted):
        e, m = centre_error(pred, truth.centres[i][:, scored], truth.colours[i])
        errs.append(e)
        misses.append(m)
    out: dict[str, float | list[float]] = {}
    _steps(errs, "centre_error", out)
    _steps(misses, "miss_rate", out)
    return out
