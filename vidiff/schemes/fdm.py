"""FDM's sampling schemes (Harvey et al. 2022, "Flexible Diffusion Modeling of Long Videos", sec. 4 / app. C).

``autoregressive``, ``long-range`` and ``hierarchy-N`` give, stage by stage, the same index sets as the
reference implementation (plai-group/flexible-video-diffusion-modeling, ``improved_diffusion/
sampling_schemes.py``) wherever that gives a valid plan (tests/test_schemes_fdm.py checks it on a grid).
Where the reference breaks (docs/schemes.md, "Corner cases"), these functions still return a valid plan.

They also accept ``given`` frames that are not a prefix ``range(n)`` (the reference only knows prefixes):
"the most recent frames" becomes "the available frames temporally closest to the frames being generated".
"""

from __future__ import annotations

from ._index import by_distance, dedupe, first_missing, linspace, nearest
from .stage import Stage, make_stage


def _first_stage(length: int, max_frames: int, spread: bool) -> list[int]:
    """The unconditional first stage when nothing is given: the first K frames, or K spread over the video."""
    if spread:
        return dedupe(int(v) for v in linspace(0, length - 1, max_frames))
    return list(range(min(max_frames, length)))


def autoregressive(length: int, max_frames: int, step_size: int, given: list[int]) -> list[Stage]:
    """FDM "Autoreg": generate the next ``s`` missing frames observing the ``K - s`` closest available ones.

    With nothing given, the first stage generates frames ``0..K-1`` unconditionally.
    """
    done = set(given)
    stages = []
    if not done:
        first = _first_stage(length, max_frames, spread=False)
        stages.append(make_stage([], first))
        done.update(first)
    while len(done) < length:
        latent = first_missing(done, length, step_size)
        observed = nearest(done, latent, max_frames - step_size)
        stages.append(make_stage(observed, latent))
        done.update(latent)
    return stages


def long_range(length: int, max_frames: int, step_size: int, given: list[int]) -> list[Stage]:
    """FDM "Long-range": like autoregressive, but half the context is the closest *given* frames.

    A stage observes the ``(K - s) // 2`` available frames closest to its latent frames, then adds given
    frames (closest first) until it observes ``K - s`` frames. With nothing given, the frames of the
    unconditional first stage (``0..K-1``) play the given frames' role, as in FDM.
    """
    done = set(given)
    base = sorted(given)
    stages = []
    if not done:
        base = _first_stage(length, max_frames, spread=False)
        stages.append(make_stage([], base))
        done.update(base)
    n_condition = max_frames - step_size
    while len(done) < length:
        latent = first_missing(done, length, step_size)
        if n_condition // 2 == 0 and len(done) + len(latent) <= max_frames:
            observed = sorted(done)  # FDM's `[-0:]` slice takes every available frame; kept while it fits
        else:
            observed = nearest(done, latent, n_condition // 2)
        for frame in by_distance(base, latent):
            if len(observed) >= n_condition:
                break
            if frame not in observed:
                observed.append(frame)
        stages.append(make_stage(observed, latent))
        done.update(latent)
    return stages


class _Hierarchy:
    """FDM's "Hierarchy-N": level 1 spreads ``s`` frames over the whole missing range, each later level fills
    in between at a finer spacing (``((T - n) / (s - 1)) ** ((N - level) / (N - 1))`` frames), the last level
    at spacing 1. A stage observes done frames lying between its latent frames, up to half of the rest just
    after them, and fills the remaining ``K - s`` context just before them (level 1: spread over the given
    frames). If fewer than two context slots would remain, the stage retries with one latent frame fewer.

    This mirrors the reference's state machine (including that a retry after a level reset restarts the walk
    at ``0 + spacing``) so that plans match; the ``# fix`` comments mark where it departs to stay valid.
    """

    def __init__(self, length: int, max_frames: int, step_size: int, given: list[int], levels: int):
        self.length, self.max_frames, self.step_size, self.levels = length, max_frames, step_size, levels
        self.done = set(given)
        self.base = sorted(given)  # FDM's `_obs_frames`
        self.level = 1
        self.last = length - 1

    def plan(self) -> list[Stage]:
        stages = []
        if not self.done:
            self.base = _first_stage(self.length, self.max_frames, spread=True)
            stages.append(make_stage([], self.base))
            self.done.update(self.base)
        while len(self.done) < self.length:
            observed, latent = self._next(self.step_size)
            stages.append(make_stage(observed, latent))
            self.done.update(latent)
        return stages

    def _spacing(self, step_size: int) -> int:
        if self.level >= self.levels:  # fix: beyond level N FDM's exponent turns negative
            return 1
        per_level_1 = (self.length - len(self.base)) / max(
            step_size - 1, 1
        )  # fix: FDM divides by zero at s=1
        return max(1, int(per_level_1 ** ((self.levels - self.level) / (self.levels - 1))))  # fix: never 0

    def _walk(self, start: int, count: int, spacing: int) -> list[int]:
        latent, idx = [], start
        while len(latent) < count and idx < self.length:
            if idx in self.done:
                idx += 1
            else:
                latent.append(idx)
                idx += spacing
        return latent

    def _reset_level(self, step_size: int) -> int:
        self.level += 1
        self.last = 0
        first_missing_frame = min(f for f in range(self.length) if f not in self.done)
        return first_missing_frame - 1 + self._spacing(step_size)

    def _next(self, step_size: int) -> tuple[list[int], list[int]]:
        done, length = self.done, self.length
        if len(done) == len(self.base):
            self.level, self.last = 1, max(self.base)
        n_condition = self.max_frames - step_size
        idx = self.last + self._spacing(step_size)
        if all(f in done for f in range(idx, length)):
            idx = self._reset_level(step_size)
        if self.level == 1:
            stop = length - 0.001
            latent = dedupe(int(v) for v in linspace(max(self.base) + 1, stop, step_size))  # fix: no repeats
        else:
            latent = self._walk(idx, step_size, self._spacing(step_size))
            while not latent:  # fix: FDM fails on an empty walk (min of an empty list)
                latent = self._walk(self._reset_level(step_size), step_size, self._spacing(step_size))
        between = [f for f in range(min(latent), max(latent)) if f in done]
        budget = n_condition - len(between)
        if budget < 2 and step_size > 1:
            return self._next(step_size - 1)
        # fix: FDM raises here at s = 1; vidiff goes on with the context it has
        after = [f for f in range(max(latent) + 1, length) if f in done][: max(budget, 0) // 2]
        n_before = n_condition - len(between) - len(after)
        if self.level == 1:
            positions = linspace(0, len(self.base) - 1 + 0.999, n_before)
            before = dedupe(self.base[int(p)] for p in positions)  # fix: FDM repeats frames when n_before > n
        else:
            before = [f for f in range(min(latent) - 1, -1, -1) if f in done][: max(n_before, 0)]
        observed = between + after + before
        if not observed and done:  # fix: only reachable with non-prefix given frames; observe the closest
            observed = nearest(done, latent, max(n_condition, 1))
        self.last = max(latent)
        return observed, latent


def hierarchy(length: int, max_frames: int, step_size: int, given: list[int], levels: int) -> list[Stage]:
    """FDM "Hierarchy-N" (``levels`` = N >= 2); see :class:`_Hierarchy`. With nothing given, the first stage
    generates ``K`` frames spread evenly over the video (``linspace(0, T - 1, K)``), as in FDM."""
    return _Hierarchy(length, max_frames, step_size, given, levels).plan()
