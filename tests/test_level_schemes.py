"""Per-frame schedules as data (vidiff.schemes.levels): invariants of every schedule over a grid of settings."""

from __future__ import annotations

import itertools

import pytest
import torch

from vidiff.diffusion.per_frame import CLEAN
from vidiff.schemes.levels import LEVEL_SCHEMES, check_level_plan, level_plan


def _chunks(length: int, k: int, c: int, n: int) -> list[int]:
    sizes, a = [], n
    while a < length:
        b = min(length, max(a + c, k))
        sizes.append(b - a)
        a = b
    return sizes


def _expected_evaluations(name, length, k, steps, n, chunk, partitions, lookahead) -> int:
    """The documented formulas (vidiff/schemes/levels.py, docs/schemes.md)."""
    t_gen = length - n
    if name == "df-pyramid":
        return sum(steps + c - 1 for c in _chunks(length, k, chunk, n))
    if name == "df-autoregressive":
        return sum(steps * c for c in _chunks(length, k, chunk, n))
    if name == "rolling":
        return ((t_gen - 1) * steps) // k + steps
    if lookahead:
        return 2 * partitions * (t_gen + k // 2 - 1)
    return partitions * (t_gen + k - 1)


def _grid():
    for name, length, k, n in itertools.product(LEVEL_SCHEMES, (6, 13), (2, 4, 5), (0, 1, 3)):
        if length < k:
            continue
        if name == "fifo":
            for partitions, lookahead in ((1, False), (2, False), (2, True), (3, True)):
                if not (lookahead and k % 2):
                    yield name, length, k, None, n, None, partitions, lookahead
        elif name == "rolling":
            for steps in (k, 2 * k, 2 * k + 1):
                yield name, length, k, steps, n, None, 1, False
        else:
            for steps, chunk in ((1, 1), (3, 1), (4, k - 1), (7, max(1, k // 2))):
                yield name, length, k, steps, n, chunk, 1, False


@pytest.mark.parametrize("name, length, k, steps, n, chunk, partitions, lookahead", list(_grid()))
def test_every_schedule_keeps_its_invariants(name, length, k, steps, n, chunk, partitions, lookahead):
    plan = level_plan(name, length, k, steps, 100, chunk=chunk, partitions=partitions, lookahead=lookahead, given=n)
    check_level_plan(plan, 100)
    levels = plan.levels
    s = len(plan.ladder) - 1
    assert s == (partitions * k if name == "fifo" else steps)
    assert plan.ladder[-1] == CLEAN and list(plan.ladder) == sorted(plan.ladder, reverse=True)
    assert (levels[1:] <= levels[:-1]).all(), "levels never increase"
    assert (levels[-1] == CLEAN).all(), "every frame ends clean"
    assert (levels[:, :n] == CLEAN).all(), "given frames stay clean"
    for f in range(n, length):
        column = levels[:, f].tolist()
        visited = [lv for i, lv in enumerate(column) if i == 0 or lv != column[i - 1]]
        assert visited == list(plan.ladder), f"frame {f} visits each level of the ladder once, in order"
    assert plan.evaluations == _expected_evaluations(name, length, k, s, n, chunk, partitions, lookahead)
    for g, windows in enumerate(plan.windows):
        for w in windows:
            assert len(w.frames) == k and list(w.frames) == list(range(w.frames[0], w.frames[0] + k))
            shown = levels[g, list(w.frames)]
            assert (shown[1:] >= shown[:-1]).all(), "inside a window noise never decreases with position"
            moved = levels[g, list(w.update)] != levels[g + 1, list(w.update)]
            assert moved.all()


def test_fifo_queue_holds_n_times_k_frames_at_distinct_levels():
    """The paper's diagonal: in the steady state n*K frames move at n*K distinct levels, n windows of K."""
    k, n = 4, 3
    plan = level_plan("fifo", 30, k, None, 1000, partitions=n)
    g = 20
    moving = (plan.levels[g] != plan.levels[g + 1]).nonzero().flatten()
    assert len(moving) == n * k and len(set(plan.levels[g, moving].tolist())) == n * k
    assert [len(w.update) for w in plan.windows[g]] == [k] * n
    for w in plan.windows[g]:
        assert w.frames == w.update  # each partition is one window of K contiguous frames
    # the head leaves clean and a pure-noise frame enters at the tail every step
    later = (plan.levels[g + 1] != plan.levels[g + 2]).nonzero().flatten()
    assert plan.levels[g + 1, moving[0]] == CLEAN and plan.levels[g + 1, moving[-1] + 1] == plan.ladder[0]
    assert later.tolist() == [*moving[1:].tolist(), int(moving[-1]) + 1]


def test_fifo_lookahead_updates_the_later_half_after_cleaner_frames():
    k = 4
    plan = level_plan("fifo", 30, k, None, 1000, partitions=2, lookahead=True)
    for w in plan.windows[20]:
        assert w.update == w.frames[k // 2:]
        assert (plan.levels[20, list(w.frames[: k // 2])] < plan.levels[20, list(w.update)].min()).all()


def test_fifo_with_one_partition_is_rolling_with_k_levels():
    a = level_plan("fifo", 11, 4, None, 100, given=2)
    b = level_plan("rolling", 11, 4, 4, 100, given=2)
    assert torch.equal(a.levels, b.levels) and a.windows == b.windows


def test_diffusion_forcing_chunks_see_clean_history():
    k, c = 6, 2
    plan = level_plan("df-pyramid", 20, k, 5, 100, chunk=c, given=3)
    for g, windows in enumerate(plan.windows):
        (w,) = windows
        shown = plan.levels[g, list(w.frames)]
        history = (shown == CLEAN).sum().item()
        assert history >= k - max(c, k - 3)  # the first chunk fills the window, later ones keep K - c history
    autoregressive = level_plan("df-autoregressive", 20, k, 5, 100, chunk=c)
    assert all(len(w.update) == 1 for ws in autoregressive.windows for w in ws), "one frame at a time"


def test_history_level_is_recorded_and_checked():
    plan = level_plan("df-pyramid", 10, 4, 5, 100, history_level=10)
    assert plan.history_level == 10
    with pytest.raises(ValueError, match="history_level"):
        level_plan("df-pyramid", 10, 4, 5, 100, history_level=100)


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="zigzag"), "name: unknown per-frame scheme"),
    (dict(length=3), "length"),
    (dict(max_frames=1), "max_frames"),
    (dict(name="df-pyramid", chunk=4), "chunk"),
    (dict(name="rolling", steps=3), "steps"),
    (dict(name="fifo", steps=7), "steps: fifo uses"),
    (dict(name="fifo", max_frames=3, lookahead=True), "K must be even"),
    (dict(name="fifo", partitions=0), "partitions"),
    (dict(given=[1, 2]), "given"),
    (dict(given=10), "given"),
])
def test_bad_arguments_name_the_argument(kwargs, match):
    args = dict(name="df-pyramid", length=10, max_frames=4, steps=None, num_timesteps=100) | kwargs
    with pytest.raises(ValueError, match=match):
        level_plan(**args)


def test_the_checker_names_broken_plans():
    from dataclasses import replace

    from vidiff.schemes.levels import Window

    good = level_plan("fifo", 6, 2, None, 100)
    check_level_plan(good, 100)
    w = good.windows[1][0]
    missing = replace(good, windows=(good.windows[0], (Window(w.frames, w.update[:1]),), *good.windows[2:]))
    with pytest.raises(ValueError, match="step 1: windows update"):
        check_level_plan(missing, 100)
    twice = replace(good, windows=(good.windows[0], (w, w), *good.windows[2:]))
    with pytest.raises(ValueError, match="updated twice"):
        check_level_plan(twice, 100)
    unseen = replace(good, windows=(good.windows[0], (Window((0,), w.update),), *good.windows[2:]))
    with pytest.raises(ValueError, match="does not show"):
        check_level_plan(unseen, 100)
    with pytest.raises(ValueError, match="given"):
        check_level_plan(replace(good, given=(0,)), 100)
