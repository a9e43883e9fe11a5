"""Schemes beyond FDM: ``interpolate`` (fill between keyframes, coarse to fine), ``interpolate-inward`` (fill
each gap from both ends toward its middle), ``predict-then-interpolate`` (after LVDM, He et al. 2022: sparse
keyframes first, then in-betweens) and ``unconditional``.

All share :func:`fill_gaps`, which fills the missing runs of a video in rounds. The stages of one round
observe only frames done before the round, so :func:`vidiff.schemes.batches` runs each round as one wave.
"""

from __future__ import annotations

from ._index import nearest
from .fdm import autoregressive
from .stage import Stage, make_stage


def _gaps(done: set[int], length: int) -> list[tuple[int, int]]:
    """Maximal runs ``(lo, hi)`` (inclusive) of frames not in ``done``."""
    runs, lo = [], None
    for f in range(length + 1):
        missing = f < length and f not in done
        if missing and lo is None:
            lo = f
        elif not missing and lo is not None:
            runs.append((lo, f - 1))
            lo = None
    return runs


def _gap_latent(lo: int, hi: int, length: int, step_size: int, inward: bool = False) -> list[int]:
    """The frames of gap ``[lo, hi]`` to generate now: all of it if it fits, else ``step_size`` of them,
    spread evenly inside an interior gap (``inward``: next to its two ends, the first end getting the odd one),
    or next to the known side of a gap at either end of the video."""
    size = hi - lo + 1
    if size <= step_size:
        return list(range(lo, hi + 1))
    if lo > 0 and hi < length - 1 and inward:  # interior, from both ends: every new frame touches a known one
        left = (step_size + 1) // 2
        return list(range(lo, lo + left)) + list(range(hi - (step_size - left) + 1, hi + 1))
    if lo > 0 and hi < length - 1:  # interior: split into step_size + 1 near-equal sub-gaps
        return [lo - 1 + (j * (size + 1)) // (step_size + 1) for j in range(1, step_size + 1)]
    if lo == 0:  # leading gap: extend backwards from the first known frame
        return list(range(hi - step_size + 1, hi + 1))
    return list(range(lo, lo + step_size))  # trailing gap: extend forwards


def fill_gaps(done: set[int], length: int, max_frames: int, step_size: int, inward: bool = False) -> list[Stage]:
    """Stages that fill every missing frame, round by round; ``done`` (non-empty) is not modified.

    Each stage generates up to ``step_size`` frames of one gap (``inward``: at the gap's two ends) and observes
    ``max_frames - len(latent)`` frames done before the round: the gap's bounding frames first, then the closest
    others.
    """
    if not done:
        raise ValueError("fill_gaps needs at least one known frame")
    done = set(done)
    stages = []
    while len(done) < length:
        known = frozenset(done)
        for lo, hi in _gaps(known, length):
            latent = _gap_latent(lo, hi, length, step_size, inward)
            bounds = [f for f in (lo - 1, hi + 1) if 0 <= f < length]
            room = max_frames - len(latent)
            others = nearest(known - set(bounds), latent, room - len(bounds))
            stages.append(make_stage(bounds[:room] + others, latent))
            done.update(latent)
    return stages


def interpolate(length: int, max_frames: int, step_size: int, given: list[int]) -> list[Stage]:
    """Fill in between the given keyframes (coarse to fine when a gap is longer than ``step_size``);
    frames before the first / after the last keyframe are extrapolated ``step_size`` at a time."""
    if not given:
        raise ValueError("given: the 'interpolate' scheme needs at least one keyframe index, got none")
    return fill_gaps(set(given), length, max_frames, step_size)


#: The step size ``interpolate-inward`` is used with by default (``vidiff evaluate``, ``vidiff sample --keyframes``):
#: one new frame at each end of a gap per stage, which measured best (docs/benchmarks.md).
INWARD_STEP_SIZE = 2


def interpolate_inward(length: int, max_frames: int, step_size: int, given: list[int]) -> list[Stage]:
    """Fill in between the given keyframes from both ends of each gap toward its middle, ``step_size`` frames
    per stage (half at each end), so that every new frame is next to a known one, as in prediction one frame at a
    time. The models use near context far better than far context: with ``step_size`` 2 this beat ``interpolate``
    on every Shapes score on both reference models, CPU- and GPU-trained (docs/benchmarks.md, "Interpolation
    from both ends"); frames outside the keyframes are extrapolated as in ``interpolate``."""
    if not given:
        raise ValueError("given: the 'interpolate-inward' scheme needs at least one keyframe index, got none")
    return fill_gaps(set(given), length, max_frames, step_size, inward=True)


def keyframe_grid(length: int, step_size: int, given: list[int]) -> list[int]:
    """The keyframes ``predict-then-interpolate`` predicts: every ``step_size + 1`` frames after the last
    given frame (from 0 when nothing is given), plus the video's last frame, so that each gap holds at most
    ``step_size`` frames and is filled by a single interpolation stage."""
    anchor = max(given) if given else 0
    grid = list(range(anchor, length, step_size + 1))
    if grid[-1] != length - 1:
        grid.append(length - 1)
    return [f for f in grid if f not in set(given)]


def predict_then_interpolate(length: int, max_frames: int, step_size: int, given: list[int]) -> list[Stage]:
    """LVDM-style: predict the keyframes of :func:`keyframe_grid` autoregressively, ``step_size`` per stage,
    each stage observing the ``K - s`` closest available frames (the first stage generates the first ``K``
    keyframes from nothing when nothing is given); then interpolate every gap, one wave of stages."""
    done = set(given)
    todo = keyframe_grid(length, step_size, given)
    stages = []
    if not done:
        first, todo = todo[:max_frames], todo[max_frames:]
        stages.append(make_stage([], first))
        done.update(first)
    while todo:
        latent, todo = todo[:step_size], todo[step_size:]
        stages.append(make_stage(nearest(done, latent, max_frames - step_size), latent))
        done.update(latent)
    return stages + fill_gaps(done, length, max_frames, step_size)


def unconditional(length: int, max_frames: int, step_size: int, given: list[int]) -> list[Stage]:
    """Generate from nothing: the first stage produces frames ``0..K-1``, later stages continue
    autoregressively (``hierarchy-N`` with nothing given is the spread-out alternative)."""
    if given:
        raise ValueError(
            f"given: the 'unconditional' scheme takes no given frames, got {len(given)}; "
            "use 'autoregressive', 'hierarchy-2' or 'interpolate' to condition on frames"
        )
    return autoregressive(length, max_frames, step_size, [])


__all__ = ["INWARD_STEP_SIZE", "fill_gaps", "interpolate", "interpolate_inward", "keyframe_grid", "predict_then_interpolate", "unconditional"]
