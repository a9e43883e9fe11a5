"""Small index helpers shared by the schemes (pure Python)."""

from __future__ import annotations

from collections.abc import Iterable


def linspace(start: float, stop: float, num: int) -> list[float]:
    """``numpy.linspace(start, stop, num)`` (endpoint included) computed with the same float operations.

    FDM truncates linspace values to frame indices; reproducing numpy's arithmetic exactly
    (``j * step + start``, last value set to ``stop``) keeps vidiff's indices identical to the reference's
    without importing numpy.
    """
    if num <= 0:
        return []
    if num == 1:
        return [float(start)]
    div = num - 1
    delta = stop - start
    step = delta / div
    if step == 0:
        values = [(j / div) * delta + start for j in range(num)]
    else:
        values = [float(j) * step + start for j in range(num)]
    values[-1] = float(stop)
    return values


def dedupe(items: Iterable[int]) -> list[int]:
    """Drop repeated items, keeping first occurrences in order."""
    seen: set[int] = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def first_missing(done: set[int], length: int, count: int) -> list[int]:
    """The first ``count`` frames of ``range(length)`` not in ``done``, ascending."""
    out = []
    for f in range(length):
        if f not in done:
            out.append(f)
            if len(out) == count:
                break
    return out


def by_distance(candidates: Iterable[int], targets: list[int]) -> list[int]:
    """``candidates`` sorted by temporal distance to the nearest target (ties: earlier frame first)."""
    if not targets:
        return sorted(candidates)
    lo, hi = min(targets), max(targets)
    tset = sorted(targets)

    def distance(f: int) -> int:
        if f < lo:
            return lo - f
        if f > hi:
            return f - hi
        return min(abs(f - t) for t in tset)

    return sorted(candidates, key=lambda f: (distance(f), f))


def nearest(candidates: Iterable[int], targets: list[int], count: int) -> list[int]:
    """The ``count`` candidates temporally closest to ``targets`` (see :func:`by_distance`)."""
    if count <= 0:
        return []
    return by_distance(candidates, targets)[:count]
