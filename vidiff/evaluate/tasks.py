"""Evaluation tasks: which frames of a Shapes-world video are given to the model and which are scored.

=============== ============================== ============================ ==================== ==================
task            length T                       given frames                 scored frames        default scheme
=============== ============================== ============================ ==================== ==================
unconditional   ``--length`` (default K)       none                         all                  ``unconditional``
prediction      ``num_observed + horizon``     ``0 .. num_observed-1``      the next ``horizon`` ``autoregressive``
interpolation   ``num_observed + horizon``     ``0`` and ``T - 1``          ``1 .. T-2``         ``interpolate``
long            ``--length`` (default 128)     ``0 .. num_observed-1``      the rest             ``hierarchy-2``
text            ``--length`` (default K)       none (the caption is given)  all                  ``unconditional``
=============== ============================== ============================ ==================== ==================

With the defaults (``num_observed = 8``, ``horizon = 8``) prediction is "given 8, predict 8" and interpolation is
"given frames 0 and 15, fill in 1 .. 14".
"""

from __future__ import annotations

from dataclasses import dataclass

from vidiff.arguments import check_int
from vidiff.schemes.fill import INWARD_STEP_SIZE

__all__ = [
    "EVAL_TASKS", "BASELINES", "TASK_BASELINES", "DEFAULT_SCHEMES", "DEFAULT_STEP_SIZES", "TaskSpec", "task_spec",
    "resolve_baselines",
]

#: Task names, in the order `vidiff evaluate --task` lists them.
EVAL_TASKS: tuple[str, ...] = ("unconditional", "prediction", "interpolation", "long", "text")

#: Baseline names (see :mod:`vidiff.evaluate.baselines`).
BASELINES: tuple[str, ...] = ("copy-last", "linear", "noise")

#: Baselines that apply to each task (``linear`` means linear extrapolation of centres for prediction and the
#: linear blend of the two keyframes for interpolation).
TASK_BASELINES: dict[str, tuple[str, ...]] = {
    "unconditional": ("noise",),
    "prediction": ("copy-last", "linear", "noise"),
    "interpolation": ("copy-last", "linear", "noise"),
    "long": ("copy-last", "noise"),
    "text": ("noise",),
}

#: Scheme used when ``--scheme`` is not given.
DEFAULT_SCHEMES: dict[str, str] = {
    "unconditional": "unconditional",
    "prediction": "autoregressive",
    "interpolation": "interpolate-inward",
    "long": "hierarchy-2",
    "text": "unconditional",
}

#: Frames generated per stage when neither ``--scheme`` nor ``--step-size`` is given (others: the scheme's
#: default, K // 2). Prediction generates one new frame per stage, each from the K - 1 frames before it: the
#: model uses near context far better than context 4 frames away, and on the reference model this beats
#: copying the last frame at every horizon where 4 new frames per stage did not (docs/benchmarks.md).
#: Interpolation, for the same reason, fills each gap from both ends, one new frame at each end per stage.
DEFAULT_STEP_SIZES: dict[str, int] = {"prediction": 1, "interpolation": INWARD_STEP_SIZE}

#: ``--length`` default of the long task.
LONG_LENGTH = 128


@dataclass(frozen=True)
class TaskSpec:
    """What one evaluation task gives and scores.

    Attributes:
        task: the task name.
        length: T, frames per video.
        given: indices of ground-truth frames handed to the model (sorted).
        scored: indices of generated frames that are scored (sorted; every frame not given).
        scheme: the long-video scheme name.
        uses_caption: whether the model is conditioned on the ground-truth caption.
        reference_colours: whether persistence is measured against the ground-truth colours (conditioned
            tasks) rather than the first scored frame's detections (free generation).
    """

    task: str
    length: int
    given: tuple[int, ...]
    scored: tuple[int, ...]
    scheme: str
    uses_caption: bool = False
    reference_colours: bool = True


def task_spec(
    task: str,
    max_frames: int,
    *,
    num_observed: int = 8,
    horizon: int = 8,
    length: int | None = None,
    scheme: str | None = None,
) -> TaskSpec:
    """The :class:`TaskSpec` of ``task`` for a model that sees ``max_frames`` (K) frames at once.

    Args:
        task: one of :data:`EVAL_TASKS`.
        max_frames: K of the model (the default length of unconditional and text videos).
        num_observed: given frames for prediction and long videos (with ``horizon``, sets the interpolation clip).
        horizon: frames predicted (prediction) or the clip length minus ``num_observed`` (interpolation).
        length: T for unconditional, long and text videos (default K, 128 and K); must be None or equal to
            ``num_observed + horizon`` for prediction and interpolation.
        scheme: override of :data:`DEFAULT_SCHEMES`.

    Raises:
        ValueError: unknown task, non-positive sizes, or a length that leaves nothing to generate.
    """
    if task not in EVAL_TASKS:
        raise ValueError(f"task: unknown task {task!r}; valid names: {', '.join(EVAL_TASKS)}")
    for name, value in (("max_frames", max_frames), ("num_observed", num_observed), ("horizon", horizon)):
        check_int(name, value)
    if length is not None:
        check_int("length", length)
    scheme = scheme or DEFAULT_SCHEMES[task]
    if task in ("prediction", "interpolation"):
        clip = num_observed + horizon
        if length is not None and length != clip:
            raise ValueError(
                f"length: the {task} task uses clips of num_observed + horizon = {clip} frames; "
                f"got length={length} (leave it unset or change num_observed/horizon)"
            )
        if task == "prediction":
            given = tuple(range(num_observed))
        else:
            if clip < 3:
                raise ValueError(f"num_observed, horizon: interpolation needs a clip of >= 3 frames, got {clip}")
            given = (0, clip - 1)
        return TaskSpec(task, clip, given, _rest(clip, given), scheme)
    if task == "long":
        length = LONG_LENGTH if length is None else length
        if length <= num_observed:
            raise ValueError(
                f"length: the long task needs more than num_observed={num_observed} frames, got {length}"
            )
        given = tuple(range(num_observed))
        return TaskSpec(task, length, given, _rest(length, given), scheme)
    length = max_frames if length is None else length
    return TaskSpec(
        task, length, (), tuple(range(length)), scheme, uses_caption=task == "text", reference_colours=False
    )


def _rest(length: int, given: tuple[int, ...]) -> tuple[int, ...]:
    g = set(given)
    return tuple(i for i in range(length) if i not in g)


def resolve_baselines(task: str, names: list[str] | tuple[str, ...] | None) -> list[str]:
    """Baselines to score: ``names`` (``'all'`` expands to every baseline of the task), deduplicated, in order.

    Raises:
        ValueError: a name that is unknown or does not apply to ``task`` (the message lists the valid ones).
    """
    if task not in EVAL_TASKS:
        raise ValueError(f"task: unknown task {task!r}; valid names: {', '.join(EVAL_TASKS)}")
    valid = TASK_BASELINES[task]
    out: list[str] = []
    for name in names or ():
        for n in valid if name == "all" else (name,):
            if n not in valid:
                raise ValueError(
                    f"baseline: {n!r} does not apply to the {task} task; valid names: {', '.join(valid)}, all"
                )
            if n not in out:
                out.append(n)
    return out
