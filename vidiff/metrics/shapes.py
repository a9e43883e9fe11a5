"""Shapes-world scores of a video, computed from the objects found in its pixels (:mod:`vidiff.metrics.detect`).

- :func:`persistence`: do the objects stay? Fraction of frames whose object count and colours equal the first
  frame's (or a given reference set).
- :func:`motion_consistency`: do objects move at constant velocity between wall bounces? Fraction of frame
  triples ``(t, t+1, t+2)`` where each tracked centre's acceleration ``c[t+2] - 2 c[t+1] + c[t]`` is at most
  ``accel_tol`` pixels on every axis on which the object is away from the walls.
- :func:`prediction_error`: distance in pixels between detected and ground-truth centres, per frame (horizon
  step), matched by colour; missed objects reported separately.
- :func:`caption_accuracy`: are the colours and shapes a caption names present, and nothing else?

Definitions, defaults and their calibration are in docs/metrics.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vidiff.metrics.detect import Detection, VideoDetections, detect_objects
from vidiff.palette import PALETTE, SHAPES

__all__ = [
    "CaptionScores",
    "PredictionError",
    "caption_accuracy",
    "mean_scores",
    "motion_consistency",
    "parse_caption",
    "persistence",
    "prediction_error",
    "shapes_scores",
]


def persistence(det: VideoDetections, reference: Sequence[str] | None = None) -> float:
    """Fraction of frames whose detected object count and colours equal the reference.

    Args:
        det: detections of one video.
        reference: colour names expected in every frame (e.g. the ground truth's). ``None``: the first frame's
            detections are the reference and the score covers frames ``1 .. t-1``.

    Returns:
        A float in [0, 1]; ``nan`` for a one-frame video without a reference.
    """
    if reference is None:
        ref, frames = det.colours(0), range(1, len(det))
    else:
        unknown = [c for c in reference if c not in PALETTE]
        if unknown:
            raise ValueError(f"reference: unknown colour names {unknown}; valid names: {list(PALETTE)}")
        ref, frames = tuple(sorted(reference)), range(len(det))
    if len(frames) == 0:
        return math.nan
    return sum(det.colours(t) == ref for t in frames) / len(frames)


def _track(det: VideoDetections, colour: str) -> list[Detection | None]:
    """One detection per frame for ``colour`` (None where it is absent or ambiguous)."""
    out: list[Detection | None] = []
    for t in range(len(det)):
        found = det.find(t, colour)
        out.append(found[0] if len(found) == 1 else None)
    return out


def _near_wall(ds: Sequence[Detection], axis: int, size: int, margin: float) -> bool:
    """Whether any of ``ds`` has its pixel extent within ``margin`` px of a wall on ``axis`` (0 = x, 1 = y)."""
    for d in ds:
        lo, hi = d.bbox[axis], d.bbox[axis + 2] + 1  # pixel edges of the box
        if lo < margin or size - hi < margin:
            return True
    return False


def motion_consistency(det: VideoDetections, *, accel_tol: float = 1.0, wall_margin: float = 1.5) -> float:
    """Fraction of (object, frame triple) checks where the object moves at constant velocity.

    Objects are tracked by colour. For frames ``t, t+1, t+2`` where the object is found once in each, with
    velocities ``v1 = c[t+1] - c[t]``, ``v2 = c[t+2] - c[t+1]`` and acceleration ``a = v2 - v1``, an axis is
    *checked* unless the object's box comes within ``wall_margin + max(|v1|, |v2|)`` pixels of a wall on that
    axis in one of the three frames (a bounce may happen there). A triple counts when at least one axis is
    checked, and is *consistent* when ``|a| <= accel_tol`` on every checked axis.

    Args:
        det: detections of one video (at consecutive, equally spaced frames).
        accel_tol: largest acceptable acceleration in pixels per frame^2 per axis (pixel quantisation of the
            centroid gives up to ~1 px on rendered ground truth at 32x32).
        wall_margin: extra distance to the walls, in pixels, within which an axis is not checked.

    Returns:
        A float in [0, 1]; ``nan`` when nothing could be checked (fewer than 3 frames, objects always missing or
        always near walls).
    """
    sizes = (det.width, det.height)
    checked = consistent = 0
    colours = sorted({d.colour for frame in det.frames for d in frame})
    for colour in colours:
        track = _track(det, colour)
        for t in range(len(track) - 2):
            triple = track[t : t + 3]
            if any(d is None for d in triple):
                continue
            c = [d.centre for d in triple]  # type: ignore[union-attr]
            ok, any_axis = True, False
            for axis in (0, 1):
                v1 = c[1][axis] - c[0][axis]
                v2 = c[2][axis] - c[1][axis]
                if _near_wall(triple, axis, sizes[axis], wall_margin + max(abs(v1), abs(v2))):  # type: ignore[arg-type]
                    continue
                any_axis = True
                ok &= abs(v2 - v1) <= accel_tol
            if any_axis:
                checked += 1
                consistent += ok
    return consistent / checked if checked else math.nan


@dataclass(frozen=True)
class PredictionError:
    """Centre errors of one video at the scored frames.

    Attributes:
        error: ``(k,)`` float64 mean distance in pixels over the objects found (``nan`` where none was found;
            with a ``miss_penalty``, missed objects count as that distance instead).
        miss_rate: ``(k,)`` float64 fraction of ground-truth objects not found at each frame.
    """

    error: torch.Tensor
    miss_rate: torch.Tensor


def prediction_error(
    det: VideoDetections,
    centres: torch.Tensor,
    colours: Sequence[str],
    *,
    frames: Sequence[int] | None = None,
    miss_penalty: float | None = None,
) -> PredictionError:
    """Distance between detected and ground-truth object centres at each scored frame (horizon step).

    Each ground-truth object is matched to the detection of its colour nearest to its centre. For future
    prediction score the predicted frames (``frames=range(8, 16)`` when 8 are given); for interpolation the
    in-between frames.

    Args:
        det: detections of one video of ``T`` frames.
        centres: ``(n, T, 2)`` ground-truth ``(x, y)`` centres in pixels (the data set's convention).
        colours: the ``n`` objects' colour names.
        frames: frame indices to score (default: all ``T``).
        miss_penalty: distance counted for a missed object (``None``: missed objects are left out of ``error``
            and only counted in ``miss_rate``).

    Returns:
        :class:`PredictionError` with ``(k,)`` tensors, ``k = len(frames)``.
    """
    centres = torch.as_tensor(centres).detach().to(device="cpu", dtype=torch.float64)
    n = len(colours)
    if centres.ndim != 3 or centres.shape[0] != n or centres.shape[1] != len(det) or centres.shape[2] != 2:
        raise ValueError(
            f"centres: expected shape (n={n}, T={len(det)}, 2) matching colours and the video, got {tuple(centres.shape)}"
        )
    unknown = [c for c in colours if c not in PALETTE]
    if unknown:
        raise ValueError(f"colours: unknown colour names {unknown}; valid names: {list(PALETTE)}")
    frames = list(range(len(det))) if frames is None else [int(f) for f in frames]
    bad = [f for f in frames if not 0 <= f < len(det)]
    if bad:
        raise ValueError(f"frames: expected indices in [0, {len(det)}), got {bad}")
    error = torch.full((len(frames),), math.nan, dtype=torch.float64)
    miss = torch.zeros(len(frames), dtype=torch.float64)
    for k, f in enumerate(frames):
        dists: list[float] = []
        for i, colour in enumerate(colours):
            cands = det.find(f, colour)
            if cands:
                gt = centres[i, f]
                dists.append(min(math.hypot(d.centre[0] - gt[0], d.centre[1] - gt[1]) for d in cands))
            else:
                miss[k] += 1
                if miss_penalty is not None:
                    dists.append(float(miss_penalty))
        if dists:
            error[k] = sum(dists) / len(dists)
        miss[k] /= max(n, 1)
    return PredictionError(error=error, miss_rate=miss)


_CAPTION_RE = re.compile(
    r"\b("
    + "|".join(map(re.escape, PALETTE))
    + r")\b(?:\s+("
    + "|".join(map(re.escape, SHAPES))
    + r")s?\b)?",
    re.IGNORECASE,
)


def parse_caption(caption: str) -> list[tuple[str, str | None]]:
    """The ``(colour, shape)`` items a caption names, in order: "a red circle and a blue square" ->
    ``[("red", "circle"), ("blue", "square")]``. A colour not followed by a shape name gives ``(colour, None)``.

    Raises:
        ValueError: the caption names no palette colour.
    """
    items = [
        (m.group(1).lower(), m.group(2).lower() if m.group(2) else None)
        for m in _CAPTION_RE.finditer(caption)
    ]
    if not items:
        raise ValueError(f"caption: expected palette colour names ({', '.join(PALETTE)}), got {caption!r}")
    return items


@dataclass(frozen=True)
class CaptionScores:
    """How well a video matches its caption.

    Attributes:
        colour: fraction of (named object, frame) pairs where an object of that colour is present.
        shape: fraction of (named object with a shape, frame) pairs where an object of that colour has that
            shape (``nan`` if the caption names no shape).
        precision: mean over frames with detections of the fraction of detected objects whose colour the
            caption names (``nan`` if nothing is detected anywhere).
    """

    colour: float
    shape: float
    precision: float


def caption_accuracy(det: VideoDetections, caption: str) -> CaptionScores:
    """Score a video against its caption (colours and shapes named are present; no unnamed colours).

    Args:
        det: detections of one video.
        caption: e.g. "a red circle and a blue square" (see :func:`parse_caption`).

    Returns:
        :class:`CaptionScores`.
    """
    items = parse_caption(caption)
    named = {c for c, _ in items}
    colour_hits = shape_hits = shape_total = 0
    precisions: list[float] = []
    for t in range(len(det)):
        frame = det[t]
        for colour, shape in items:
            found = [d for d in frame if d.colour == colour]
            colour_hits += bool(found)
            if shape is not None:
                shape_total += 1
                shape_hits += any(d.shape == shape for d in found)
        if frame:
            precisions.append(sum(d.colour in named for d in frame) / len(frame))
    n = len(items) * len(det)
    return CaptionScores(
        colour=colour_hits / n if n else math.nan,
        shape=shape_hits / shape_total if shape_total else math.nan,
        precision=sum(precisions) / len(precisions) if precisions else math.nan,
    )


def shapes_scores(
    video: torch.Tensor,
    *,
    caption: str | None = None,
    centres: torch.Tensor | None = None,
    colours: Sequence[str] | None = None,
    frames: Sequence[int] | None = None,
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> dict[str, float | list[float]]:
    """All Shapes-world scores of one video that its inputs allow, as a flat dict (for JSON and tables).

    Args:
        video: ``(t, 3, h, w)`` frames in ``value_range``.
        caption: if given, adds ``caption_colour``, ``caption_shape``, ``caption_precision``.
        centres: ``(n, t, 2)`` ground-truth centres; with ``colours``, adds ``prediction_error`` (mean over the
            scored frames), ``prediction_error_per_step`` and ``miss_rate_per_step`` (lists over ``frames``), and
            the persistence is measured against the ground-truth colours.
        colours: the ground-truth objects' colour names.
        frames: frames scored for the prediction error (default all).
        value_range: ``(lo, hi)`` of the frames.

    Returns:
        ``persistence`` and ``motion_consistency`` always, plus the keys above.
    """
    if (centres is None) != (colours is None):
        raise ValueError("centres, colours: expected both (ground truth) or neither")
    det = detect_objects(video, value_range=value_range)
    out: dict[str, float | list[float]] = {
        "persistence": persistence(det, reference=colours),
        "motion_consistency": motion_consistency(det),
    }
    if centres is not None and colours is not None:
        pe = prediction_error(det, centres, colours, frames=frames)
        out["prediction_error"] = float(pe.error.nanmean()) if not pe.error.isnan().all() else math.nan
        out["prediction_error_per_step"] = pe.error.tolist()
        out["miss_rate_per_step"] = pe.miss_rate.tolist()
    if caption is not None:
        cs = caption_accuracy(det, caption)
        out.update(caption_colour=cs.colour, caption_shape=cs.shape, caption_precision=cs.precision)
    return out


def mean_scores(results: Sequence[dict[str, float | list[float]]]) -> dict[str, float | list[float]]:
    """Average per-video score dicts (:func:`shapes_scores`) key by key, ignoring ``nan``.

    Scalars average to a float; equal-length lists (per-step errors) average element-wise. A key missing from
    some videos is averaged over the videos that have it; an all-``nan`` entry stays ``nan``.
    """
    keys: list[str] = []
    for r in results:
        keys += [k for k in r if k not in keys]
    out: dict[str, float | list[float]] = {}
    for k in keys:
        vals = torch.tensor([r[k] for r in results if k in r], dtype=torch.float64)  # (n,) or (n, steps)
        if vals.ndim not in (1, 2):
            raise ValueError(f"results: expected scalars or equal-length lists under {k!r}")
        mean = vals.nanmean(dim=0)
        out[k] = mean.tolist() if vals.ndim == 2 else float(mean)
    return out
