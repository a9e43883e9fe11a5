"""Per-frame noise-level schedules for long videos, as data: Diffusion Forcing, rolling diffusion, FIFO-Diffusion.

FDM plans (:mod:`vidiff.schemes.stage`) move every frame of a stage through the same timesteps. The schedules
here give each frame its own level at each step. A whole long video is one :class:`LevelPlan`:

* ``levels``, a ``(steps + 1, length)`` matrix over the **whole video**: row ``g`` holds every frame's timestep
  before global step ``g`` (:data:`CLEAN` = -1 for clean frames), as in :mod:`vidiff.diffusion.per_frame`;
* ``windows[g]``, the network calls of step ``g``: each :class:`Window` shows the model at most K contiguous
  frames (``frames``) at their row-``g`` levels and moves its ``update`` frames to their row-``g + 1`` levels.
  The windows of a step partition the frames that move in it and all read the state before the step, so they
  can share one batched forward pass.

Every schedule below follows one idea: each generated frame ``f`` starts at a *start step* ``g_f`` and then
descends a **ladder** of ``S`` timesteps (``make_timesteps(num_timesteps, S, spacing)`` then :data:`CLEAN`) one
rung per step, so it visits each level exactly once. Before ``g_f`` it waits at the top rung as pure noise (and
may be shown to the model there). The schedules differ in the start steps and in how moving frames are grouped
into windows (docs/schemes.md, "Per-frame noise levels"):

=====================  =========================================  ===================================================
scheme                 start steps / ladder                       windows and network evaluations per video
=====================  =========================================  ===================================================
``df-pyramid``         chunks of ``c`` new frames after ``K - c``  one per step, the K frames ending at the chunk's end
                       history frames; frame ``j`` of a chunk      (history clean, or at ``history_level``);
                       starts ``j`` steps after it; S = steps      ``sum over chunks (S + c_i - 1)``
``df-autoregressive``  as df-pyramid, frame ``j`` starts ``j * S``  ``sum over chunks S * c_i``
``rolling``            frame ``i`` starts ``(i * S) // K``: a      one per step, the K frames ending at the noisiest
                       window whose noise grows with position      moving frame; ``((T' - 1) * S) // K + S``
``fifo``               frame ``i`` starts at step ``i``;            n blocks of K frames by level (latent partitioning),
                       S = n * K (a queue of n * K frames at        each its own window; ``n * (T' + K - 1)``;
                       n * K distinct levels)                      lookahead: 2n blocks of K / 2, each window the block
                                                                   plus the K / 2 cleaner frames before it:
                                                                   ``2n * (T' + K / 2 - 1)``
=====================  =========================================  ===================================================

(``T'`` = frames generated, ``T`` minus the given prefix.) The executor is :mod:`vidiff.pipelines.level_video`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

from vidiff.diffusion.per_frame import CLEAN, check_levels
from vidiff.diffusion.spacing import make_timesteps


@dataclass(frozen=True)
class Window:
    """One network call: the model sees ``frames`` (increasing positions) and moves ``update`` (a subset)."""

    frames: tuple[int, ...]
    update: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class LevelPlan:
    """A per-frame schedule for a whole video (see the module docstring).

    Attributes:
        name: the scheme that made it.
        levels: ``(steps + 1, length)`` long tensor of timesteps, :data:`CLEAN` = -1 for clean frames.
        windows: ``windows[g]``: the network calls of step ``g``.
        max_frames: K, the most frames one window shows the model.
        given: the given (clean from the start) frames, a prefix ``0 .. n - 1``.
        history_level: the level at which clean frames are shown to the model (:data:`CLEAN`: as clean,
            observed frames; a timestep: noised to it, Diffusion Forcing's noisy history).
        ladder: the timesteps each generated frame visits, top first, :data:`CLEAN` last.
    """

    name: str
    levels: torch.Tensor
    windows: tuple[tuple[Window, ...], ...]
    max_frames: int
    given: tuple[int, ...] = ()
    history_level: int = CLEAN
    ladder: tuple[int, ...] = ()

    @property
    def steps(self) -> int:
        """Global steps (rows of ``levels`` minus one)."""
        return self.levels.shape[0] - 1

    @property
    def length(self) -> int:
        """Frames in the video."""
        return self.levels.shape[1]

    @property
    def evaluations(self) -> int:
        """Network evaluations per video: the number of windows over all steps."""
        return sum(len(w) for w in self.windows)


#: scheme name -> one-line description
LEVEL_SCHEMES: dict[str, str] = {
    "df-pyramid": "Diffusion Forcing, pyramid: chunks of new frames, frame j of a chunk starts j steps later",
    "df-autoregressive": "Diffusion Forcing, autoregressive: one frame denoised fully after the other",
    "rolling": "rolling diffusion: a K-frame window whose noise grows with position, sliding S / K steps a frame",
    "fifo": "FIFO-Diffusion: diagonal denoising of a queue of n*K frames at n*K levels (latent partitioning)",
}


def _int(value: object, argument: str, low: int) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{argument}: expected an integer, got {value!r}")
    try:
        value = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{argument}: expected an integer, got {value!r}") from None
    if value < low:
        raise ValueError(f"{argument}: expected >= {low}, got {value}")
    return value


def _given_prefix(given: int | Iterable[int], length: int) -> int:
    """The number n of given frames; they must be the prefix ``0 .. n - 1`` and leave a frame to generate."""
    if isinstance(given, int) and not isinstance(given, bool):
        n = given
        if n < 0:
            raise ValueError(f"given: expected a number of frames >= 0, got {n}")
    else:
        idx = sorted(int(i) for i in given)
        n = len(idx)
        if idx != list(range(n)):
            raise ValueError(f"given: per-frame schedules continue a clip: given frames must be 0..n-1, got {idx[:10]}")
    if n >= length:
        raise ValueError(f"given: {n} given frames leave nothing to generate in length={length}")
    return n


def make_ladder(num_timesteps: int, steps: int, spacing: str = "trailing") -> tuple[int, ...]:
    """The S timesteps a generated frame visits, top first, then :data:`CLEAN`."""
    return (*make_timesteps(num_timesteps, steps, spacing), CLEAN)


def _levels_from_starts(starts: dict[int, int], length: int, ladder: Sequence[int]) -> torch.Tensor:
    """``(G + 1, length)``: frame ``f`` on rung ``clamp(g - starts[f], 0, S)``; frames without a start are clean."""
    s = len(ladder) - 1
    total = max(starts.values()) + s
    g = torch.arange(total + 1)[:, None]
    start = torch.tensor([starts.get(f, 0) for f in range(length)])[None]
    rung = (g - start).clamp(0, s)
    levels = torch.tensor(list(ladder))[rung]
    clean = torch.tensor([f not in starts for f in range(length)])
    return torch.where(clean[None], torch.full_like(levels, CLEAN), levels)


def _window(update: Sequence[int], end: int, max_frames: int, length: int) -> Window:
    """The K contiguous frames ending at ``end`` (moved right when they would start before frame 0)."""
    first = min(max(0, end - max_frames + 1), length - max_frames)
    return Window(tuple(range(first, first + max_frames)), tuple(sorted(update)))


def _windows(
    levels: torch.Tensor, max_frames: int, group: Callable[[int, list[int]], list[tuple[list[int], int]]]
) -> tuple[tuple[Window, ...], ...]:
    """Per step, ``group(g, moving frames)`` -> [(update, window end)], turned into :class:`Window` s."""
    out = []
    for g in range(levels.shape[0] - 1):
        moving = (levels[g] != levels[g + 1]).nonzero().flatten().tolist()
        out.append(tuple(_window(u, end, max_frames, levels.shape[1]) for u, end in group(g, moving)))
    return tuple(out)


def diffusion_forcing(
    length: int,
    max_frames: int,
    steps: int,
    num_timesteps: int,
    *,
    chunk: int | None = None,
    uncertainty: int = 1,
    given: int | Iterable[int] = 0,
    history_level: int = CLEAN,
    spacing: str = "trailing",
    name: str = "df-pyramid",
) -> LevelPlan:
    """Diffusion Forcing's sliding-window sampling (Chen et al. 2024, Algorithm 2, with its scheduling matrix).

    The video is made chunk by chunk: chunk ``i`` generates frames ``[a_i, b_i)`` with ``b_i = min(T, max(a_i
    + c, K))`` in the window of the K frames ending at ``b_i`` (the frames before ``a_i`` are history). Inside a
    chunk frame ``j`` starts ``j * uncertainty`` steps after the chunk: ``uncertainty = 1`` is DF's pyramid,
    ``uncertainty = steps`` its autoregressive schedule (each frame fully denoised before the next starts).

    Args:
        length: T. max_frames: K. steps: S, the ladder of each frame. num_timesteps: the model's T_train.
        chunk: c, new frames per chunk after the first, 1 <= c <= K - 1 (default K // 2).
        uncertainty: start delay between neighbouring frames of a chunk, 1 <= u <= S.
        given: the given prefix (number of frames, or indices 0..n-1).
        history_level: the level clean history frames are shown at (:data:`CLEAN`: clean).
        spacing: ladder spacing (``trailing`` starts at the last training timestep, pure noise).
    """
    length, max_frames, steps = _check_common(length, max_frames, steps, num_timesteps, history_level)
    chunk = max_frames // 2 if chunk is None else _int(chunk, "chunk", 1)
    if chunk >= max_frames:
        raise ValueError(f"chunk: expected <= max_frames - 1 = {max_frames - 1} (history needs a frame), got {chunk}")
    uncertainty = _int(uncertainty, "uncertainty", 1)
    if uncertainty > steps:
        raise ValueError(f"uncertainty: expected <= steps={steps}, got {uncertainty}")
    n = _given_prefix(given, length)
    ladder = make_ladder(num_timesteps, steps, spacing)
    starts, ends, begin, a = {}, {}, 0, n
    while a < length:
        b = min(length, max(a + chunk, max_frames))
        for j, f in enumerate(range(a, b)):
            starts[f], ends[f] = begin + j * uncertainty, b - 1
        begin += (b - a - 1) * uncertainty + steps
        a = b
    levels = _levels_from_starts(starts, length, ladder)
    windows = _windows(levels, max_frames, lambda g, moving: [(moving, ends[moving[0]])])
    return LevelPlan(name, levels, windows, max_frames, tuple(range(n)), history_level, ladder)


def rolling(
    length: int,
    max_frames: int,
    steps: int,
    num_timesteps: int,
    *,
    given: int | Iterable[int] = 0,
    history_level: int = CLEAN,
    spacing: str = "trailing",
) -> LevelPlan:
    """Rolling diffusion (Ruhe et al. 2024): a window of K frames whose noise grows with position.

    Frame ``i`` (counted after the given prefix) starts at step ``(i * S) // K``, so at any step the K moving
    frames sit about ``S / K`` rungs apart (local time ``(k + t) / K`` for window slot ``k``), and every ``S / K``
    steps the clean head leaves the window while a pure-noise frame enters at the tail. S >= K.
    """
    length, max_frames, steps = _check_common(length, max_frames, steps, num_timesteps, history_level)
    if steps < max_frames:
        raise ValueError(f"steps: rolling needs at least max_frames={max_frames} levels, got {steps}")
    n = _given_prefix(given, length)
    ladder = make_ladder(num_timesteps, steps, spacing)
    starts = {f: ((f - n) * steps) // max_frames for f in range(n, length)}
    levels = _levels_from_starts(starts, length, ladder)
    windows = _windows(levels, max_frames, lambda g, moving: [(moving, max(moving))])
    return LevelPlan("rolling", levels, windows, max_frames, tuple(range(n)), history_level, ladder)


def fifo(
    length: int,
    max_frames: int,
    num_timesteps: int,
    *,
    partitions: int = 1,
    lookahead: bool = False,
    given: int | Iterable[int] = 0,
    history_level: int = CLEAN,
    spacing: str = "trailing",
) -> LevelPlan:
    """FIFO-Diffusion (Kim et al. 2024): diagonal denoising of a queue of frames at increasing levels.

    The ladder has S = n * K levels (n = ``partitions``). Frame ``i`` (after the given prefix) enters the queue
    at step ``i`` as pure noise; every step each queued frame moves one rung down, so the queue holds n * K frames
    at n * K distinct levels, and the head leaves clean while a new frame enters at the tail. Latent
    partitioning: the queue is cut by level into n blocks of K frames (block ``b`` holds rungs ``b * K .. (b +
    1) * K - 1`` from the bottom), each denoised by its own window. Lookahead denoising: 2n blocks of K / 2
    frames, each window being its block plus the K / 2 cleaner frames before it, so every updated frame sees
    K / 2 cleaner predecessors (twice the evaluations). At the start and end the window is completed with the
    waiting pure-noise frames and with clean (already finished or given) frames.
    """
    length, max_frames, _ = _check_common(length, max_frames, 1, num_timesteps, history_level)
    partitions = _int(partitions, "partitions", 1)
    if lookahead and max_frames % 2:
        raise ValueError(f"max_frames: lookahead denoising updates K / 2 frames a window; K must be even, got {max_frames}")
    steps = partitions * max_frames
    if steps > num_timesteps:
        raise ValueError(f"partitions: n * K = {steps} levels exceed num_timesteps={num_timesteps}")
    n = _given_prefix(given, length)
    ladder = make_ladder(num_timesteps, steps, spacing)
    starts = {f: f - n for f in range(n, length)}
    levels = _levels_from_starts(starts, length, ladder)
    block = max_frames // 2 if lookahead else max_frames

    def group(g: int, moving: list[int]) -> list[tuple[list[int], int]]:
        blocks: dict[int, list[int]] = {}
        for f in moving:  # rungs left to the bottom: 1 .. S; block index by level
            blocks.setdefault((steps - (g - starts[f]) - 1) // block, []).append(f)
        return [(blocks[b], max(blocks[b])) for b in sorted(blocks, reverse=True)]

    windows = _windows(levels, max_frames, group)
    return LevelPlan("fifo", levels, windows, max_frames, tuple(range(n)), history_level, ladder)


def _check_common(length, max_frames, steps, num_timesteps, history_level) -> tuple[int, int, int]:
    length = _int(length, "length", 1)
    max_frames = _int(max_frames, "max_frames", 2)
    steps = _int(steps, "steps", 1)
    num_timesteps = _int(num_timesteps, "num_timesteps", 1)
    if length < max_frames:
        raise ValueError(f"length: expected at least max_frames={max_frames} frames (the model's window), got {length}")
    if steps > num_timesteps:
        raise ValueError(f"steps: expected <= num_timesteps={num_timesteps}, got {steps}")
    history_level = _int(history_level, "history_level", CLEAN)
    if history_level >= num_timesteps:
        raise ValueError(f"history_level: expected {CLEAN} (clean) .. {num_timesteps - 1}, got {history_level}")
    return length, max_frames, steps


def level_plan(
    name: str,
    length: int,
    max_frames: int,
    steps: int | None = None,
    num_timesteps: int = 1000,
    *,
    chunk: int | None = None,
    partitions: int = 1,
    lookahead: bool = False,
    given: int | Iterable[int] = 0,
    history_level: int = CLEAN,
    spacing: str = "trailing",
) -> LevelPlan:
    """A per-frame schedule by name (:data:`LEVEL_SCHEMES`), checked by :func:`check_level_plan`.

    ``steps`` is each frame's ladder S for ``df-*`` and ``rolling`` (default 50); ``fifo`` takes S = n * K
    from ``partitions`` (a ``steps`` other than that is a ValueError).
    """
    key = name.strip().lower() if isinstance(name, str) else name
    common = dict(given=given, history_level=history_level, spacing=spacing)
    if key == "fifo":
        if steps is not None and steps != partitions * max_frames:
            raise ValueError(f"steps: fifo uses partitions * max_frames = {partitions * max_frames} levels, got {steps}")
        result = fifo(length, max_frames, num_timesteps, partitions=partitions, lookahead=lookahead, **common)
    elif key in ("df-pyramid", "df-autoregressive"):
        steps = 50 if steps is None else steps
        u = 1 if key == "df-pyramid" else steps
        result = diffusion_forcing(length, max_frames, steps, num_timesteps, chunk=chunk, uncertainty=u, name=key,
                                   **common)
    elif key == "rolling":
        result = rolling(length, max_frames, 50 if steps is None else steps, num_timesteps, **common)
    else:
        raise ValueError(f"name: unknown per-frame scheme {name!r}; valid names: {', '.join(LEVEL_SCHEMES)}")
    try:
        check_level_plan(result, num_timesteps)
    except ValueError as err:  # never hand out a wrong plan
        raise RuntimeError(f"vidiff bug: scheme {name!r} made an invalid level plan: {err}") from err
    return result


def check_level_plan(plan: LevelPlan, num_timesteps: int) -> None:
    """Raise ValueError naming the first broken invariant of a :class:`LevelPlan`.

    Invariants: ``levels`` is a valid level matrix (:func:`vidiff.diffusion.per_frame.check_levels`: columns
    non-increasing, last row clean, every step moves a frame); given frames are clean throughout; every window
    shows at most K distinct increasing frames in ``[0, length)`` and updates a non-empty subset of them; the
    updates of a step are disjoint and are exactly the frames whose level changes in it.
    """
    levels = check_levels(plan.levels, num_timesteps)
    if len(plan.windows) != plan.steps:
        raise ValueError(f"windows: expected one list per step ({plan.steps}), got {len(plan.windows)}")
    for f in plan.given:
        if bool((levels[:, f] != CLEAN).any()):
            raise ValueError(f"given: frame {f} is given but not clean at every step")
    for g, windows in enumerate(plan.windows):
        moving = set((levels[g] != levels[g + 1]).nonzero().flatten().tolist())
        updated: set[int] = set()
        for w in windows:
            where = f"step {g}, window {w.frames}"
            if not w.update or not w.frames or len(w.frames) > plan.max_frames:
                raise ValueError(f"{where}: expected 1..{plan.max_frames} frames and a frame to update")
            if list(w.frames) != sorted(set(w.frames)) or w.frames[0] < 0 or w.frames[-1] >= plan.length:
                raise ValueError(f"{where}: frames must be distinct, increasing, in [0, {plan.length})")
            if not set(w.update) <= set(w.frames):
                raise ValueError(f"{where}: updates frames {sorted(set(w.update) - set(w.frames))} it does not show")
            if set(w.update) & updated:
                raise ValueError(f"{where}: frames {sorted(set(w.update) & updated)} are updated twice")
            updated |= set(w.update)
        if updated != moving:
            raise ValueError(f"step {g}: windows update {sorted(updated)[:10]} but frames {sorted(moving)[:10]} move")
