"""Samplers as plain functions over a denoiser callable ``denoiser(x_t, t) -> prediction`` (t: LongTensor (b,)).

Every sampler takes the state ``x`` at the first of ``timesteps`` (decreasing original timesteps, see
:mod:`vidiff.diffusion.spacing`), visits each timestep once and ends at clean data (alpha-bar = 1). They work on
any rank (images ``(b, c, h, w)``, videos ``(b, t, c, h, w)``) and device, draw all randomness from ``generator``
and know nothing of text, frames or guidance (see :mod:`vidiff.diffusion.guidance` and
:class:`vidiff.diffusion.hooks.SamplingHooks`). Symbols: a_t = alpha-bar_t, alpha_t = sqrt(a_t) and
sigma_t = sqrt(1 - a_t) in DPM-Solver's notation, s = the next (less noisy) timestep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch

from vidiff.diffusion.guidance import Denoiser
from vidiff.diffusion.hooks import Callback, Generators, SamplingHooks, check_generator, denoise, randn_like
from vidiff.diffusion.schedule import NoiseSchedule
from vidiff.diffusion.spacing import TIMESTEP_SPACINGS, make_sigma_levels, make_solver_timesteps, make_timesteps
from vidiff.diffusion.utils import check_choice, check_same_shape

SAMPLERS = ("ddpm", "ddim", "dpmpp_2m", "dpmpp_2m_karras", "dpmpp_2m_exponential", "unipc")
SIGMA_SPACED = {"dpmpp_2m_karras": "karras", "dpmpp_2m_exponential": "exponential"}


def check_sampler(sampler: str, spacing: str | None = None, *, option: str = "") -> None:
    """The one check of a sampler name (and a spacing name) at every front door; ValueError naming the argument
    (``option`` prefixes it, e.g. ``--`` for a command-line flag) and listing the valid names."""
    if sampler not in SAMPLERS:
        raise ValueError(f"{option}sampler: unknown sampler {sampler!r}; valid names: {', '.join(SAMPLERS)}")
    if spacing is not None and spacing not in TIMESTEP_SPACINGS:
        raise ValueError(f"{option}spacing: unknown spacing {spacing!r}; valid names: {', '.join(TIMESTEP_SPACINGS)}")


def sampler_timesteps(
    schedule: NoiseSchedule, sampler: str, steps: int, spacing: str = "leading", steps_offset: int = 0
) -> tuple[list[int], list[float] | None]:
    """The timesteps ``sampler`` visits, by the rule of the diffusers scheduler it reproduces.

    ``ddpm`` / ``ddim``: :func:`make_timesteps` (``DDIMScheduler``). ``dpmpp_2m`` / ``unipc``:
    :func:`make_solver_timesteps` (``DPMSolverMultistepScheduler`` / ``UniPCMultistepScheduler``).
    ``dpmpp_2m_karras`` / ``dpmpp_2m_exponential``: :func:`make_sigma_levels` (``use_karras_sigmas`` /
    ``use_exponential_sigmas``; ``spacing`` and ``steps_offset`` do not apply, as in diffusers).

    Returns:
        ``(timesteps, levels)``: the model's timesteps and, for the sigma-spaced samplers, the alpha-bar of each
        step (None otherwise: the schedule's alpha-bars at the timesteps).
    """
    check_choice("sampler", sampler, SAMPLERS)
    if sampler in SIGMA_SPACED:
        if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= schedule.num_timesteps:
            raise ValueError(
                f"steps must be an int in [1, num_timesteps={schedule.num_timesteps}]; got {steps!r}"
            )
        return make_sigma_levels(schedule.alphas_cumprod_f64.tolist(), steps, SIGMA_SPACED[sampler])
    rule = make_timesteps if sampler in ("ddpm", "ddim") else make_solver_timesteps
    return rule(schedule.num_timesteps, steps, spacing, steps_offset), None


def _prepare(
    x: torch.Tensor,
    schedule: NoiseSchedule,
    timesteps: Sequence[int],
    hooks: SamplingHooks | None,
    alphas_cumprod: Sequence[float] | None = None,
) -> tuple[list[int], list[float], SamplingHooks]:
    """Checks a sampler's arguments; returns the timesteps as ints, the noise level (alpha-bar) of each step and
    the validated hooks. With ``alphas_cumprod`` (levels between timesteps), timesteps may repeat."""
    if not (isinstance(x, torch.Tensor) and x.is_floating_point() and x.ndim >= 1):
        raise ValueError(
            f"noise must be a floating-point tensor (b, ...); got {type(x).__name__} {getattr(x, 'shape', '')}"
        )
    ts = [int(t) for t in timesteps]
    strict = alphas_cumprod is None
    order_ok = all(a > b if strict else a >= b for a, b in pairwise(ts))
    if not ts or ts[0] >= schedule.num_timesteps or ts[-1] < 0 or not order_ok:
        raise ValueError(
            f"timesteps must be non-empty, {'strictly decreasing' if strict else 'non-increasing'} "
            f"and in [0, {schedule.num_timesteps - 1}]; got {ts}"
        )
    if alphas_cumprod is None:
        levels = [float(schedule.alphas_cumprod_f64[t]) for t in ts]
    else:
        levels = [float(a) for a in alphas_cumprod]
        increasing = all(a < b for a, b in pairwise(levels))
        if len(levels) != len(ts) or not all(0 < a < 1 for a in levels) or not increasing:
            raise ValueError(
                f"alphas_cumprod must hold one strictly increasing level in (0, 1) per timestep ({len(ts)}); "
                f"got {levels}"
            )
    hooks = (hooks or SamplingHooks()).validate(x)
    if hooks.prediction == "eps" and levels[0] == 0:
        raise ValueError(
            f"prediction='eps' is undefined at t={ts[0]} where alphas_cumprod is 0 (zero terminal SNR): "
            "x_t is pure noise there, so eps says nothing about x0. Use a v- or x0-prediction model, or a spacing "
            "that does not start at the last timestep."
        )
    return ts, levels, hooks


@torch.no_grad()
def sample_ddpm(
    denoiser: Denoiser,
    x: torch.Tensor,
    schedule: NoiseSchedule,
    timesteps: Sequence[int],
    *,
    generator: Generators = None,
    hooks: SamplingHooks | None = None,
) -> torch.Tensor:
    """Ancestral sampling, DDPM (Ho et al. 2020, Algorithm 2, posterior eq. 6-7) on respaced steps (Nichol & Dhariwal 2021, sec. 4).

    The schedule is respaced to ``timesteps`` (betas recomputed from the alpha-bars there, improved-diffusion's
    ``SpacedDiffusion``); each step draws ``x_s ~ q(x_s | x_t, x0_hat)`` with the posterior variance ("fixed small"),
    and the last step returns the posterior mean, which is x0_hat.
    """
    ts, _, hooks = _prepare(x, schedule, timesteps, hooks)
    spaced = schedule.respace(ts)  # step j of `spaced` is the j-th smallest of ts
    total = len(ts)
    for i, t in enumerate(ts):
        j = total - 1 - i
        x, x0, _ = denoise(denoiser, x, t, schedule, hooks, generator, i, total)
        # 1. posterior mean mu~_t(x_t, x0_hat) = coef1 * x0_hat + coef2 * x_t and variance beta~_t (eq. 7)
        mean, var, _ = spaced.q_posterior(x0, x, j)
        # 2. x_s = mu~ + sqrt(beta~) z, no noise on the last step (Algorithm 2, line 3)
        x = mean + math.sqrt(var) * randn_like(x, generator) if j > 0 else mean
    return hooks.finish(x)


@torch.no_grad()
def sample_ddim(
    denoiser: Denoiser,
    x: torch.Tensor,
    schedule: NoiseSchedule,
    timesteps: Sequence[int],
    *,
    eta: float = 0.0,
    generator: Generators = None,
    hooks: SamplingHooks | None = None,
) -> torch.Tensor:
    """DDIM update, Song et al. 2021, eq. 12 with sigma_t(eta) of eq. 16: eta = 0 is deterministic, eta = 1 is DDPM.

    ``x_s = sqrt(a_s) x0_hat + sqrt(1 - a_s - sigma^2) eps_hat + sigma z`` with
    ``sigma = eta sqrt((1 - a_s) / (1 - a_t)) sqrt(1 - a_t / a_s)``; the last step goes to a_s = 1 (x_s = x0_hat).
    """
    if not eta >= 0:
        raise ValueError(f"eta must be >= 0; got {eta!r}")
    ts, _, hooks = _prepare(x, schedule, timesteps, hooks)
    ab = schedule.alphas_cumprod_f64
    total = len(ts)
    for i, t in enumerate(ts):
        x, x0, eps = denoise(denoiser, x, t, schedule, hooks, generator, i, total)
        a_t = float(ab[t])
        a_s = float(ab[ts[i + 1]]) if i + 1 < total else 1.0
        # 1. sigma_t(eta), eq. 16
        sigma = eta * math.sqrt((1 - a_s) / (1 - a_t) * (1 - a_t / a_s))
        # 2. "direction pointing to x_t", eq. 12
        direction = math.sqrt(max(1 - a_s - sigma**2, 0.0)) * eps
        # 3. x_s = sqrt(a_s) * "predicted x0" + direction + random noise
        x = math.sqrt(a_s) * x0 + direction
        if sigma > 0:
            x = x + sigma * randn_like(x, generator)
    return hooks.finish(x)


def _log_snr_half(a: float) -> float:
    """lambda = log(alpha / sigma) = 0.5 * log(a / (1 - a)); -inf at a = 0 (zero terminal SNR)."""
    return -math.inf if a == 0 else 0.5 * (math.log(a) - math.log1p(-a))


def _data_step(x: torch.Tensor, a_s: float, a_t: float, d: torch.Tensor) -> torch.Tensor:
    """The exponential-integrator step of data-prediction solvers from level a_s to a_t (a_t < 1):
    ``x_t = (sigma_t / sigma_s) x_s - alpha_t (e^{-h} - 1) D``, ``h = lambda_t - lambda_s`` (DPM-Solver++'s
    first-order update). D = x0_hat is DDIM; DPM-Solver++(2M) and UniPC pass their corrected D."""
    h = _log_snr_half(a_t) - _log_snr_half(a_s)
    return math.sqrt((1 - a_t) / (1 - a_s)) * x - math.sqrt(a_t) * math.expm1(-h) * d


@torch.no_grad()
def sample_dpmpp_2m(
    denoiser: Denoiser,
    x: torch.Tensor,
    schedule: NoiseSchedule,
    timesteps: Sequence[int],
    *,
    alphas_cumprod: Sequence[float] | None = None,
    generator: Generators = None,
    hooks: SamplingHooks | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M), Lu et al. 2022, Algorithm 2 (multistep, data prediction), as diffusers'
    ``DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2)`` (midpoint, final sigma 0) and
    k-diffusion's ``sample_dpmpp_2m``.

    ``x_s = (sigma_s / sigma_t) x_t - alpha_s (exp(-h) - 1) D`` with ``h = lambda_s - lambda_t``, ``D = x0_hat`` on the
    first step and ``D = (1 + 1/(2r)) x0_hat - 1/(2r) x0_hat_prev``, ``r = h_prev / h``, afterwards; the final step
    to clean data is first order (sigma_s = 0 gives x_s = x0_hat). diffusers' ``lower_order_final`` changes nothing
    more at order 2. :func:`sample` passes diffusers' DPM-Solver timesteps (:func:`sampler_timesteps`).
    ``generator`` only feeds the known-region hook.

    Args:
        alphas_cumprod: The level of each step when it lies between training timesteps (Karras / exponential
            sigmas, :func:`vidiff.diffusion.spacing.make_sigma_levels`); the model is then told ``timesteps``.
            None: the schedule's alpha-bars at ``timesteps``.
    """
    ts, levels, hooks = _prepare(x, schedule, timesteps, hooks, alphas_cumprod)
    total = len(ts)
    x0_prev, h_prev = None, None
    for i, t in enumerate(ts):
        level = None if alphas_cumprod is None else levels[i]
        x, x0, _ = denoise(denoiser, x, t, schedule, hooks, generator, i, total, level)
        if i + 1 == total:
            x = x0  # final step to sigma_s = 0: first order, x_s = x0_hat
            break
        a_t, a_s = levels[i], levels[i + 1]
        # 1. step size in log-SNR, h_i = lambda_{t_i} - lambda_{t_{i-1}}
        h = _log_snr_half(a_s) - _log_snr_half(a_t)
        # 2. D_i: first order on the first step, else the second-order multistep combination (r_i = h_{i-1} / h_i)
        if x0_prev is None:
            d = x0
        else:
            c = 1 / (2 * (h_prev / h))  # 0 when h_prev is inf (zero-terminal-SNR first step)
            d = (1 + c) * x0 - c * x0_prev
        # 3. x_{t_i} = sigma_{t_i}/sigma_{t_{i-1}} x - alpha_{t_i} (e^{-h_i} - 1) D_i
        x = _data_step(x, a_t, a_s, d)
        x0_prev, h_prev = x0, h
    return hooks.finish(x)


def _unipc_b(h: float) -> tuple[float, float]:
    """UniPC's b_1, b_2 (Zhao et al. 2023, with B(h) = e^{hh} - 1, "bh2"), data prediction (hh = -h):
    ``b_k = k! g_k / B(h)`` with ``g_1 = (e^hh - 1) / hh - 1`` and ``g_2 = g_1 / hh - 1/2`` (g_k = hh phi_{k+1}(hh))."""
    hh = -h
    b_h = math.expm1(hh)
    g1 = b_h / hh - 1
    g2 = g1 / hh - 0.5
    return g1 / b_h, 2 * g2 / b_h


def _unipc_d(
    lambdas: Sequence[float], outputs: Sequence[torch.Tensor], x0_t: torch.Tensor | None
) -> torch.Tensor:
    """UniPC's D = ``x0_hat_s0 + sum_k rho_k D_k`` for the step from s0 to t, ``lambdas = [(lambda_s1,) lambda_s0,
    lambda_t]`` and ``outputs = [(x0_hat_s1,) x0_hat_s0]``.

    ``x0_t`` is x0_hat at t for the corrector UniC, None for the predictor UniP. With one output: UniP-1 (D =
    x0_hat_s0, DDIM) and UniC-1 (rho = 1/2 on x0_hat_t - x0_hat_s0). With two: UniP-2 (rho = 1/2 on
    D_1 = (x0_hat_s1 - x0_hat_s0) / r_1, which is DPM-Solver++(2M)) and UniC-2 (rho solves
    ``[[1, 1], [r_1, 1]] rho = [b_1, b_2]``), ``r_1 = (lambda_s1 - lambda_s0) / h``, ``h = lambda_t - lambda_s0``.
    """
    m0 = outputs[-1]
    if len(outputs) == 1:
        return m0 if x0_t is None else m0 + 0.5 * (x0_t - m0)
    lam_s1, lam_s0, lam_t = lambdas
    h = lam_t - lam_s0
    r1 = (lam_s1 - lam_s0) / h  # negative; -inf after a zero-terminal-SNR first level (then rho_1 = 0)
    d1 = (outputs[-2] - m0) * (1 / r1)
    if x0_t is None:
        return m0 + 0.5 * d1
    b1, b2 = _unipc_b(h)
    rho1 = (b1 - b2) / (1 - r1)
    return m0 + rho1 * d1 + (b1 - rho1) * (x0_t - m0)


@torch.no_grad()
def sample_unipc(
    denoiser: Denoiser,
    x: torch.Tensor,
    schedule: NoiseSchedule,
    timesteps: Sequence[int],
    *,
    alphas_cumprod: Sequence[float] | None = None,
    generator: Generators = None,
    hooks: SamplingHooks | None = None,
) -> torch.Tensor:
    """UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of Diffusion
    Models"), order 2, B(h) = e^h - 1 ("bh2"), data prediction: diffusers' ``UniPCMultistepScheduler`` defaults.

    Each step evaluates the model once at the predicted x_i; the corrector UniC then refines x_i with that
    evaluation (no extra model call) and the predictor UniP steps from the refined x_i with it. Orders ramp up
    (1 on the first step, 2 afterwards) and the final step to clean data is first order (x_0 = x0_hat), as
    ``lower_order_final`` does. Every step is :func:`_data_step` with UniPC's D (:func:`_unipc_d`).

    Args:
        alphas_cumprod: As for :func:`sample_dpmpp_2m`.
    """
    ts, levels, hooks = _prepare(x, schedule, timesteps, hooks, alphas_cumprod)
    total = len(ts)
    lambdas = [_log_snr_half(a) for a in levels]
    outputs: list[torch.Tensor] = []  # x0_hat of the last two steps
    x_prev = x
    for i, t in enumerate(ts):
        level = None if alphas_cumprod is None else levels[i]
        x, x0, _ = denoise(denoiser, x, t, schedule, hooks, generator, i, total, level)
        if i + 1 == total:
            x = x0  # final step to clean data: first order, x_0 = x0_hat (a correction of x_i would not enter)
            break
        if i > 0:  # 1. corrector UniC: x_i again from x_{i-1}, now with x0_hat_i (no extra model call)
            d = _unipc_d(lambdas[i - len(outputs) : i + 1], outputs, x0)
            x = _data_step(x_prev, levels[i - 1], levels[i], d)
        outputs = [*outputs[-1:], x0]
        # 2. predictor UniP from the corrected x_i
        d = _unipc_d(lambdas[i + 1 - len(outputs) : i + 2], outputs, None)
        x_prev, x = x, _data_step(x, levels[i], levels[i + 1], d)
    return hooks.finish(x)


@torch.no_grad()
def sample(
    denoiser: Denoiser,
    noise: torch.Tensor,
    schedule: NoiseSchedule,
    sampler: str = "ddpm",
    steps: int = 50,
    eta: float = 0.0,
    prediction: str = "eps",
    spacing: str = "leading",
    generator: Generators = None,
    *,
    steps_offset: int = 0,
    threshold: str | None = None,
    dynamic_percentile: float = 0.995,
    init: torch.Tensor | None = None,
    strength: float = 1.0,
    known: torch.Tensor | None = None,
    known_mask: torch.Tensor | None = None,
    known_noised: bool = True,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Draws samples: runs ``sampler`` over ``steps`` timesteps chosen by ``spacing``, starting from ``noise``.

    Args:
        denoiser: ``denoiser(x_t, t) -> prediction`` (x_t ``(b, ...)``, t LongTensor ``(b,)``); wrap conditioning
            and guidance around the model with :func:`vidiff.diffusion.classifier_free_guidance` or a closure.
        noise: Standard normal noise ``(b, ...)``: images ``(b, c, h, w)``, videos ``(b, t, c, h, w)``.
        schedule: The schedule the model was trained with.
        sampler: ``"ddpm"`` (ancestral), ``"ddim"``, ``"dpmpp_2m"``, ``"dpmpp_2m_karras"``,
            ``"dpmpp_2m_exponential"`` or ``"unipc"`` (docs/sampling.md has a table).
        steps: Number of sampling steps (model evaluations), 1 <= steps <= num_timesteps.
        eta: DDIM's eta (0 = deterministic); only for ``sampler="ddim"``.
        prediction: What the denoiser predicts: ``"eps"``, ``"x0"`` or ``"v"``.
        spacing: ``"leading"``, ``"trailing"`` or ``"linspace"``, with the meaning of the diffusers scheduler each
            sampler follows (:func:`sampler_timesteps`); ignored by the Karras / exponential samplers.
        generator: Source of every random draw (DDPM / DDIM noise, known-region noise): one ``torch.Generator``,
            or a list of one per sample so that each sample's draws do not depend on the rest of the batch.
        steps_offset: diffusers' ``steps_offset`` for leading spacing.
        threshold: ``None``, ``"static"`` or ``"dynamic"`` thresholding of x0_hat at each step.
        dynamic_percentile: Percentile p of dynamic thresholding.
        init: Start-from-image (SDEdit): data ``(b, ...)`` like ``noise``, noised to the first used timestep.
        strength: With ``init``: in [0, 1], the fraction of the steps that are run (diffusers' img2img rule,
            ``int(steps * strength)`` last steps); 0 returns ``init``, 1 starts from pure ``noise``.
        known: Known content ``(b, ...)`` like ``noise`` (inpainting, observed video frames).
        known_mask: Bool tensor of noise's rank broadcastable to its shape, True where ``known`` applies.
        known_noised: True: known elements of x_t are ``q_sample(known, t)`` with fresh noise at every step;
            False: they are the clean ``known`` (vidiff's video model). Either way they equal ``known`` at the end.
        callback: ``callback(step_index, total, x_t, x0_hat)`` after each model evaluation.

    Returns:
        Samples x0 with noise's shape, dtype and device.
    """
    check_choice("sampler", sampler, SAMPLERS)
    if not (isinstance(noise, torch.Tensor) and noise.is_floating_point() and noise.ndim >= 1):
        raise ValueError(f"noise must be a floating-point tensor (b, ...); got {type(noise).__name__}")
    check_choice("spacing", spacing, TIMESTEP_SPACINGS)
    timesteps, levels = sampler_timesteps(schedule, sampler, steps, spacing, steps_offset)
    if eta != 0 and sampler != "ddim":
        raise ValueError(f"eta only applies to sampler='ddim'; got eta={eta!r} with sampler={sampler!r}")
    check_generator(generator, noise.shape[0])
    hooks = SamplingHooks(
        prediction, threshold, dynamic_percentile, known, known_mask, known_noised, callback
    )
    hooks = hooks.validate(noise)
    if not 0 <= strength <= 1:
        raise ValueError(f"strength must lie in [0, 1]; got {strength!r}")
    x = noise
    if init is None:
        if strength != 1:
            raise ValueError(f"strength={strength!r} needs an init image (init=None)")
    else:
        check_same_shape("init", init, noise.shape, "noise")
        init = init.to(device=noise.device, dtype=noise.dtype)
        kept = min(int(steps * strength), steps)  # diffusers' img2img: run the last `kept` timesteps
        if kept == 0:
            return hooks.finish(init.clone())
        if kept < steps:
            timesteps = timesteps[steps - kept :]
            if levels is None:
                x = schedule.q_sample(init, timesteps[0], noise)  # SDEdit: destroy the image down to t_start
            else:
                levels = levels[steps - kept :]
                x = math.sqrt(levels[0]) * init + math.sqrt(1 - levels[0]) * noise
    if sampler == "ddpm":
        return sample_ddpm(denoiser, x, schedule, timesteps, generator=generator, hooks=hooks)
    if sampler == "ddim":
        return sample_ddim(denoiser, x, schedule, timesteps, eta=eta, generator=generator, hooks=hooks)
    solver = sample_unipc if sampler == "unipc" else sample_dpmpp_2m
    return solver(denoiser, x, schedule, timesteps, alphas_cumprod=levels, generator=generator, hooks=hooks)
