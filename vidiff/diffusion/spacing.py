"""Which of the T training timesteps a sampler visits: diffusers' ``timestep_spacing`` options.

The three rules reproduce ``DDIMScheduler.set_timesteps`` of diffusers (and Lin et al. 2024, Table 2),
including numpy's float ``arange`` and round-half-to-even, without depending on numpy:

- ``leading``: ``arange(steps) * (T // steps) + steps_offset``, reversed; e.g. T=1000, 10 steps -> 900, 800, ..., 0.
- ``trailing``: ``round(arange(T, 0, -T / steps)) - 1``; e.g. T=1000, 10 steps -> 999, 899, ..., 99.
  It starts at the last timestep, which matters with zero-terminal-SNR schedules. Where numpy's float arange
  gives diffusers one element too many (e.g. T=1000, steps=61, ending in -1), the first ``steps`` are kept.
- ``linspace``: ``round(linspace(0, T - 1, steps))``, reversed; e.g. T=1000, 10 steps -> 999, 888, ..., 111, 0.

diffusers' multistep solvers (``DPMSolverMultistepScheduler``, ``UniPCMultistepScheduler``) use other rules for the
same names, because their last step goes from the last listed timestep to sigma = 0 instead of visiting t = 0:
:func:`make_solver_timesteps` reproduces them (``leading`` and ``linspace`` space ``steps + 1`` points and drop
the one at t = 0; ``trailing`` is the rule above).
"""

from __future__ import annotations

import math
from itertools import pairwise

from vidiff.diffusion.utils import check_choice

SPACINGS = ("leading", "trailing", "linspace")


def make_timesteps(
    num_timesteps: int, steps: int, spacing: str = "leading", steps_offset: int = 0
) -> list[int]:
    """Returns the timesteps a sampler visits, in decreasing order.

    Args:
        num_timesteps: T, the number of training timesteps.
        steps: Number of sampling steps, 1 <= steps <= T.
        spacing: ``"leading"``, ``"trailing"`` or ``"linspace"`` (see the module docstring).
        steps_offset: Added to every ``leading`` timestep (diffusers' ``steps_offset``; Stable Diffusion uses 1).

    Returns:
        ``steps`` distinct ints in ``[0, T - 1]``, strictly decreasing.
    """
    check_choice("spacing", spacing, SPACINGS)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= num_timesteps:
        raise ValueError(f"steps must be an int in [1, num_timesteps={num_timesteps}]; got {steps!r}")
    if isinstance(steps_offset, bool) or not isinstance(steps_offset, int) or steps_offset < 0:
        raise ValueError(f"steps_offset must be an int >= 0; got {steps_offset!r}")
    if steps_offset and spacing != "leading":
        raise ValueError(f"steps_offset only applies to spacing='leading'; got spacing={spacing!r}")
    if spacing == "leading":
        ratio = num_timesteps // steps
        ts = [i * ratio + steps_offset for i in reversed(range(steps))]
    elif spacing == "trailing":
        step = -num_timesteps / steps
        delta = (num_timesteps + step) - num_timesteps  # numpy's arange fills start + i * (x[1] - x[0])
        # numpy's arange may yield one extra element here (T=1000, steps=61 gives a trailing -1 in diffusers);
        # keep the first `steps`, which equal diffusers' values.
        count = min(math.ceil(-num_timesteps / step), steps)
        ts = [round(num_timesteps + i * delta) - 1 for i in range(count)]
    else:
        if steps == 1:
            ts = [0]  # numpy's linspace(0, T - 1, 1) is [0.]
        else:
            delta = (num_timesteps - 1) / (steps - 1)
            ts = [round(i * delta) for i in range(steps)]
            ts[-1] = num_timesteps - 1  # linspace sets the endpoint exactly
            ts.reverse()
    if ts[0] >= num_timesteps:
        raise ValueError(
            f"steps_offset={steps_offset} puts the first timestep at {ts[0]}, outside [0, {num_timesteps - 1}]"
        )
    if len(ts) != steps or any(a <= b for a, b in pairwise(ts)):  # pragma: no cover (float surprises)
        raise ValueError(
            f"spacing={spacing!r} gave {len(ts)} timesteps that are not strictly decreasing: {ts}"
        )
    return ts


def make_solver_timesteps(
    num_timesteps: int, steps: int, spacing: str = "leading", steps_offset: int = 0
) -> list[int]:
    """The timesteps of diffusers' multistep solvers (DPM-Solver++, UniPC) for a ``timestep_spacing`` name.

    ``leading``: ``arange(steps + 1) * (T // (steps + 1)) + steps_offset``, reversed, without the last (t = 0);
    e.g. T=1000, 10 steps -> 900, 810, ..., 90. ``linspace``: ``round(linspace(0, T - 1, steps + 1))``, reversed,
    without the last; e.g. 999, 899, ..., 100. ``trailing``: as :func:`make_timesteps`. The solver's final step
    goes from the last of them to clean data (diffusers' ``final_sigmas_type="zero"``).

    Args:
        num_timesteps: T, the number of training timesteps.
        steps: Number of sampling steps: at most T - 1 for ``leading`` / ``linspace`` (they space steps + 1
            points), T for ``trailing``.
        spacing: ``"leading"``, ``"trailing"`` or ``"linspace"``.
        steps_offset: diffusers' ``steps_offset`` (``leading`` only).

    Returns:
        ``steps`` distinct ints in ``[0, T - 1]``, strictly decreasing.
    """
    check_choice("spacing", spacing, SPACINGS)
    if spacing == "trailing":
        return make_timesteps(num_timesteps, steps, spacing, steps_offset)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= num_timesteps - 1:
        raise ValueError(
            f"steps must be an int in [1, num_timesteps - 1 = {num_timesteps - 1}] for a multistep solver with "
            f"spacing={spacing!r} (it spaces steps + 1 points); got {steps!r}"
        )
    return make_timesteps(num_timesteps, steps + 1, spacing, steps_offset)[:-1]
