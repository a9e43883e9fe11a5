"""``plan(name, ...)``: scheme names, input checks, and the final validity guard."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable

from . import fdm, fill
from .adaptive import make_adaptive
from .stage import Stage, check_plan

# name -> one-line description; "hierarchy-N" / "adaptive-hierarchy-N" stand for N = 2, 3, ...
SCHEMES: dict[str, str] = {
    "autoregressive": "next s frames from the K - s closest available ones (FDM Autoreg)",
    "long-range": "as autoregressive, half the context taken from the given frames (FDM Long-range)",
    "hierarchy-N": "coarse-to-fine over N levels, N = 2, 3, ... (FDM Hierarchy-N)",
    "adaptive": "autoregressive latents, context chosen at run time by embedding distance (FDM Ad. Autoreg)",
    "adaptive-hierarchy-N": "hierarchy-N latents, context chosen at run time (FDM Ad. Hierarchy-N)",
    "predict-then-interpolate": "keyframes every s + 1 frames autoregressively, then the in-betweens (LVDM)",
    "interpolate": "fill in between the given keyframes, coarse to fine",
    "interpolate-inward": "fill in between the given keyframes from both ends of each gap toward its middle",
    "unconditional": "nothing given: the first K frames from scratch, then autoregressive",
}

# FDM's names (improved_diffusion/sampling_schemes.py) accepted as aliases
ALIASES: dict[str, str] = {"autoreg": "autoregressive", "adaptive-autoreg": "adaptive"}

_Planner = Callable[[int, int, int, list[int]], list[Stage]]
_FIXED: dict[str, _Planner] = {
    "autoregressive": fdm.autoregressive,
    "long-range": fdm.long_range,
    "predict-then-interpolate": fill.predict_then_interpolate,
    "interpolate": fill.interpolate,
    "interpolate-inward": fill.interpolate_inward,
    "unconditional": fill.unconditional,
}


def scheme_names() -> list[str]:
    """Valid names, with the hierarchy families written as ``hierarchy-N`` / ``adaptive-hierarchy-N``."""
    return list(SCHEMES) + [f"{alias} (= {name})" for alias, name in ALIASES.items()]


def _resolve(name: str) -> tuple[_Planner, bool, bool]:
    """(planner, adaptive, hierarchical) for a scheme name; ValueError listing the valid names otherwise."""
    if not isinstance(name, str):
        raise ValueError(f"name: expected a scheme name (str), got {name!r}")
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key in _FIXED:
        return _FIXED[key], False, False
    if key == "adaptive":
        return fdm.autoregressive, True, False
    match = re.fullmatch(r"(adaptive-)?hierarchy-(\d+)", key)
    if match:
        levels = int(match.group(2))
        if levels < 2:
            raise ValueError(f"name: hierarchy needs N >= 2 levels, got {name!r}")

        def planner(length: int, max_frames: int, step_size: int, given: list[int]) -> list[Stage]:
            return fdm.hierarchy(length, max_frames, step_size, given, levels)

        return planner, bool(match.group(1)), True
    raise ValueError(f"name: unknown scheme {name!r}; valid names: {', '.join(scheme_names())}")


def _as_int(value: object, argument: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{argument}: expected an integer, got {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{argument}: expected an integer, got {value!r}") from None


def check_plan_arguments(
    length: int, max_frames: int, step_size: int | None, given: Iterable[int] = ()
) -> tuple[int, int, int, list[int]]:
    """Validate plan arguments; return them normalised (``step_size=None`` -> ``max_frames // 2``, FDM's
    default; ``given`` sorted). Raises ValueError naming the argument, the expectation and the value given."""
    length = _as_int(length, "length")
    max_frames = _as_int(max_frames, "max_frames")
    if length < 1:
        raise ValueError(f"length: expected >= 1 frame, got {length}")
    if max_frames < 2:
        raise ValueError(
            f"max_frames: expected >= 2 (one observed + one generated frame per stage), got {max_frames}"
        )
    if length < max_frames:
        raise ValueError(
            f"length: expected at least max_frames={max_frames} frames (the model's window), got {length}"
        )
    step_size = max_frames // 2 if step_size is None else _as_int(step_size, "step_size")
    if not 1 <= step_size < max_frames:
        raise ValueError(
            f"step_size: expected 1 <= step_size <= max_frames - 1 = {max_frames - 1} "
            f"(each stage must observe at least one frame), got {step_size}"
        )
    if isinstance(given, (str, bytes)):
        raise ValueError(f"given: expected frame indices, got {given!r}")
    given = [_as_int(f, "given") for f in given]
    bad = [f for f in given if not 0 <= f < length]
    if bad:
        raise ValueError(f"given: indices must lie in [0, length={length}), got {bad[:10]}")
    if len(set(given)) != len(given):
        repeated = sorted({f for f in given if given.count(f) > 1})
        raise ValueError(f"given: indices must be distinct, got repeats {repeated[:10]}")
    return length, max_frames, step_size, sorted(given)


def plan(
    name: str, length: int, max_frames: int, step_size: int | None = None, given: Iterable[int] = ()
) -> list[Stage]:
    """Plan a long video: the ordered stages that generate every frame not given.

    Args:
        name: scheme name, see :data:`SCHEMES` (``hierarchy-2``, ``adaptive-hierarchy-3``, ...; FDM's
            ``autoreg`` / ``adaptive-autoreg`` are accepted too).
        length: T, frames in the video (>= max_frames).
        max_frames: K, frames the model sees at once (observed + latent), >= 2.
        step_size: s, latent frames per stage, 1 <= s < K (None: K // 2, FDM's default).
        given: indices of frames supplied by the user (FDM's setting: ``range(n)``, the first n frames).
            Any number of them; a stage observes at most ``K - len(latent)`` of them.

    Returns:
        list of :class:`Stage` (empty when every frame is given). Each stage holds <= K distinct frames,
        observes only frames given or produced earlier (at least one whenever any exists), and every missing
        frame is produced exactly once. Adaptive stages carry ``adaptive=True``: see :func:`resolve_stage`.

    Raises:
        ValueError: bad arguments (the message names the argument) or a name unknown (it lists valid names).
    """
    planner, adaptive, hierarchical = _resolve(name)
    length, max_frames, step_size, given = check_plan_arguments(length, max_frames, step_size, given)
    stages = planner(length, max_frames, step_size, given)
    if adaptive:
        stages = make_adaptive(stages, given, hierarchical)
    try:
        check_plan(stages, length, max_frames, given)
    except ValueError as err:  # never hand out a wrong plan
        raise RuntimeError(f"vidiff bug: scheme {name!r} made an invalid plan: {err}") from err
    return stages
