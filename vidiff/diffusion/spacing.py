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
the one at t = 0; ``trailing`` is the rule above). :func:`make_sigma_levels` gives the Karras and exponential
sigma spacings of the same schedulers (``use_karras_sigmas`` / ``use_exponential_sigmas``).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from itertools import pairwise

from vidiff.diffusion.utils import check_choice

TIMESTEP_SPACINGS = ("leading", "trailing", "linspace")
SIGMA_SPACINGS = ("karras", "exponential")
KARRAS_RHO = 7.0  # Karras et al. 2022, eq. 5


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
    check_choice("spacing", spacing, TIMESTEP_SPACINGS)
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
    check_choice("spacing", spacing, TIMESTEP_SPACINGS)
    if spacing == "trailing":
        return make_timesteps(num_timesteps, steps, spacing, steps_offset)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= num_timesteps - 1:
        raise ValueError(
            f"steps must be an int in [1, num_timesteps - 1 = {num_timesteps - 1}] for a multistep solver with "
            f"spacing={spacing!r} (it spaces steps + 1 points); got {steps!r}"
        )
    return make_timesteps(num_timesteps, steps + 1, spacing, steps_offset)[:-1]


def _linspace(start: float, stop: float, n: int) -> list[float]:
    """numpy's ``linspace(start, stop, n)``: ``start + i * step`` with the endpoint set exactly."""
    if n == 1:
        return [start]
    step = (stop - start) / (n - 1)
    return [start + i * step for i in range(n - 1)] + [stop]


def _sigma_ramp(sigma_max: float, sigma_min: float, steps: int, kind: str) -> list[float]:
    """``steps`` sigmas from sigma_max down to sigma_min: Karras et al. 2022 eq. 5 (rho = 7) or log-uniform."""
    if kind == "karras":
        hi, lo = sigma_max ** (1 / KARRAS_RHO), sigma_min ** (1 / KARRAS_RHO)
        return [(hi + r * (lo - hi)) ** KARRAS_RHO for r in _linspace(0.0, 1.0, steps)]
    return [math.exp(v) for v in _linspace(math.log(sigma_max), math.log(sigma_min), steps)]


def _sigma_to_t(sigma: float, log_sigmas: list[float]) -> float:
    """The fractional timestep of ``sigma``: linear interpolation in log sigma between neighbouring timesteps,
    clamped to [0, T - 1] (diffusers' and k-diffusion's ``_sigma_to_t`` / ``sigma_to_t``)."""
    log_sigma = math.log(max(sigma, 1e-10))
    low = min(max(bisect_right(log_sigmas, log_sigma) - 1, 0), len(log_sigmas) - 2)
    w = (log_sigmas[low] - log_sigma) / (log_sigmas[low] - log_sigmas[low + 1])
    return low + min(max(w, 0.0), 1.0)


def make_sigma_levels(
    alphas_cumprod: Sequence[float], steps: int, kind: str = "karras"
) -> tuple[list[int], list[float]]:
    """Noise levels spaced in sigma = sqrt((1 - a) / a) between the schedule's extremes, and the timesteps the model
    is told at them: diffusers' ``use_karras_sigmas`` / ``use_exponential_sigmas`` of its multistep schedulers.

    ``karras``: ``(s_max^(1/7) + i / (n - 1) (s_min^(1/7) - s_max^(1/7)))^7`` (Karras et al. 2022, eq. 5);
    ``exponential``: log-uniform from s_max to s_min. Each sigma's timestep is its fractional position in the
    schedule's log sigmas, rounded (Karras) or truncated (exponential) as diffusers does; the solver steps at the
    sigmas themselves, so the levels lie between training timesteps and several may share one model timestep.

    Args:
        alphas_cumprod: The schedule's alpha-bars ``(T,)``, float64, all in (0, 1).
        steps: Number of sampling steps, >= 1.
        kind: ``"karras"`` or ``"exponential"``.

    Returns:
        ``(timesteps, levels)``: ``steps`` non-increasing ints in ``[0, T - 1]`` and the alpha-bars
        ``1 / (1 + sigma^2)`` the sampler steps through, strictly increasing (the sampler ends at alpha-bar 1).
    """
    check_choice("kind", kind, SIGMA_SPACINGS)
    ab = [float(a) for a in alphas_cumprod]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1; got {steps!r}")
    if len(ab) < 2 or not all(0 < a < 1 for a in ab):
        raise ValueError(
            f"alphas_cumprod must hold >= 2 values in (0, 1) for {kind} sigmas (a zero-terminal-SNR schedule has "
            "an infinite sigma_max; use spacing='trailing' with it); got min "
            f"{min(ab, default=float('nan'))!r}"
        )
    log_sigmas = [0.5 * (math.log1p(-a) - math.log(a)) for a in ab]
    sigmas = _sigma_ramp(math.exp(log_sigmas[-1]), math.exp(log_sigmas[0]), steps, kind)
    to_int = round if kind == "karras" else int  # diffusers rounds Karras timesteps and casts exponential ones
    timesteps = [to_int(_sigma_to_t(s, log_sigmas)) for s in sigmas]
    levels = [1 / (1 + s * s) for s in sigmas]
    if any(a >= b for a, b in pairwise(levels)):
        raise ValueError(f"steps={steps} gives {kind} sigmas that are not strictly decreasing; use fewer steps")
    return timesteps, levels
