"""Sampling with a noise level per frame: a level matrix instead of one timestep sequence.

FDM-style sampling moves every latent frame through the same timesteps; Diffusion Forcing (Chen et al. 2024),
FIFO-Diffusion (Kim et al. 2024) and rolling diffusion (Ruhe et al. 2024) give each frame its own. Here a
schedule is a **level matrix** ``levels`` of shape ``(steps + 1, frames)``: row ``i`` holds every frame's
timestep before sampler step ``i``, row ``i + 1`` after it. :data:`CLEAN` (-1) means clean data (alpha-bar = 1):
such frames are given to the model as observed. Each column is non-increasing and ends at :data:`CLEAN`; a frame
whose level does not change in a step is left as it is (the model still sees it, at its level).

Step ``i`` evaluates the model once on all frames at their row-``i`` levels and moves each changing frame from
``t`` to ``s`` by DDIM (Song et al. 2021, eq. 12 and 16) with its own ``a_t`` and ``a_s``. With all columns
equal (and the last row :data:`CLEAN`) this is :func:`vidiff.diffusion.samplers.sample_ddim` step for step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vidiff.diffusion.hooks import Generators, randn_like
from vidiff.diffusion.schedule import PREDICTIONS, NoiseSchedule
from vidiff.diffusion.utils import append_dims, check_choice

#: The level of a clean frame (alpha-bar = 1), below timestep 0.
CLEAN = -1

#: ``denoiser(x_t (b, k, ...), t (b, k) long, clean (b, k) bool) -> prediction``; clean frames get t = 0.
FrameDenoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def check_levels(levels: torch.Tensor, num_timesteps: int, frames: int | None = None) -> torch.Tensor:
    """Validate a level matrix ``(steps + 1, frames)``; returns it as a long tensor.

    Raises:
        ValueError: wrong rank or frame count, levels outside ``[CLEAN, num_timesteps)``, a column that increases
            or does not end clean, or a step that changes no frame (it would waste a model evaluation).
    """
    levels = torch.as_tensor(levels).long()
    if levels.ndim != 2 or levels.shape[0] < 2:
        raise ValueError(f"levels must be (steps + 1, frames) with at least 2 rows; got shape {tuple(levels.shape)}")
    if frames is not None and levels.shape[1] != frames:
        raise ValueError(f"levels must have one column per frame ({frames}); got {levels.shape[1]}")
    if int(levels.min()) < CLEAN or int(levels.max()) >= num_timesteps:
        raise ValueError(f"levels must lie in [{CLEAN}, {num_timesteps - 1}]; got {int(levels.min())}..{int(levels.max())}")
    steps = levels[1:] - levels[:-1]
    if bool((steps > 0).any()):
        row, col = (steps > 0).nonzero()[0].tolist()
        raise ValueError(f"levels must not increase down a column; frame {col} goes up at step {row}")
    if bool((levels[-1] != CLEAN).any()):
        raise ValueError(f"every frame must end clean (level {CLEAN}) in the last row; got {levels[-1].tolist()}")
    idle = (steps == 0).all(dim=1)
    if bool(idle.any()):
        raise ValueError(f"step {int(idle.nonzero()[0])} changes no frame's level; drop that row")
    return levels


def _alpha_bar(schedule: NoiseSchedule, levels: torch.Tensor) -> torch.Tensor:
    """alpha-bar at each level (float64; 1 at :data:`CLEAN`)."""
    table = torch.cat([torch.ones(1, dtype=torch.float64), schedule.alphas_cumprod_f64.cpu().double()])
    return table[levels + 1]


def ddim_level_step(
    x: torch.Tensor,
    pred: torch.Tensor,
    schedule: NoiseSchedule,
    t_levels: torch.Tensor,
    s_levels: torch.Tensor,
    *,
    prediction: str = "eps",
    eta: float = 0.0,
    generator: Generators = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One DDIM step per frame: frame ``j`` of video ``i`` moves from level ``t_levels[i, j]`` to ``s_levels[i, j]``.

    Frames whose level does not change, and clean frames, are returned unchanged. With ``eta > 0`` the noise is
    drawn for the whole tensor, so the random stream does not depend on which frames move.

    Args:
        x: ``(b, k, ...)`` the frames at their ``t_levels``.
        pred: the model's output on ``x`` at ``t_levels`` (clean frames shown at t = 0).
        schedule: the training schedule.
        t_levels, s_levels: ``(b, k)`` or ``(k,)`` long levels (:data:`CLEAN` = -1), ``s <= t``.
        prediction: ``eps``, ``x0`` or ``v``.
        eta: DDIM's eta (Song et al. 2021, eq. 16); 0 is deterministic.
        generator: randomness for ``eta > 0`` (one generator, or one per video).

    Returns:
        ``(x_s, x0_hat)``.
    """
    b, k = x.shape[0], x.shape[1]
    t_levels = torch.as_tensor(t_levels).long().cpu().expand(b, k)
    s_levels = torch.as_tensor(s_levels).long().cpu().expand(b, k)
    t = t_levels.clamp(min=0).to(x.device)
    if pred.shape != x.shape:
        raise ValueError(f"pred must have the shape of x_t: expected {tuple(x.shape)}, got {tuple(pred.shape)}")
    x0, eps = schedule.to_x0_eps(pred.to(x.dtype), x, t, prediction)
    a_t, a_s = _alpha_bar(schedule, t_levels), _alpha_bar(schedule, s_levels)
    moving = (t_levels != s_levels) & (t_levels != CLEAN)
    # sigma_t(eta), eq. 16, and the DDIM update, eq. 12, per frame (float64 coefficients, as sample_ddim)
    sigma = eta * ((1 - a_s) / (1 - a_t).clamp(min=1e-300) * (1 - a_t / a_s)).clamp(min=0).sqrt()
    sigma = torch.where(moving, sigma, torch.zeros_like(sigma))
    c_x0 = a_s.sqrt().to(x.dtype).to(x.device)
    c_eps = (1 - a_s - sigma**2).clamp(min=0).sqrt().to(x.dtype).to(x.device)
    new = append_dims(c_x0, x.ndim) * x0 + append_dims(c_eps, x.ndim) * eps
    if eta > 0 and bool((sigma > 0).any()):
        new = new + append_dims(sigma.to(x.dtype).to(x.device), x.ndim) * randn_like(x, generator)
    return torch.where(append_dims(moving.to(x.device), x.ndim), new, x), x0


@torch.no_grad()
def sample_ddim_levels(
    denoiser: FrameDenoiser,
    x: torch.Tensor,
    schedule: NoiseSchedule,
    levels: torch.Tensor,
    *,
    prediction: str = "eps",
    eta: float = 0.0,
    generator: Generators = None,
    callback=None,
) -> torch.Tensor:
    """Run a level matrix with DDIM from ``x`` (``(b, k, ...)``, every frame at its row-0 level).

    Args:
        denoiser: ``denoiser(x_t, t, clean)`` (see :data:`FrameDenoiser`).
        x: the state at row 0: latent frames noised to their level, clean frames clean.
        schedule: the model's training schedule.
        levels: ``(steps + 1, k)`` (:func:`check_levels`), the same for every video of the batch.
        prediction: what the denoiser predicts (``eps``, ``x0``, ``v``).
        eta: DDIM's eta (0: deterministic).
        generator: randomness for ``eta > 0``.
        callback: ``callback(step, total, x_t, x0_hat)`` after each model evaluation.

    Returns:
        The clean video, ``x``'s shape.
    """
    check_choice("prediction", prediction, PREDICTIONS)
    if not eta >= 0:
        raise ValueError(f"eta must be >= 0; got {eta!r}")
    if x.ndim < 3:
        raise ValueError(f"x must be (b, k, ...) with one slot per frame; got shape {tuple(x.shape)}")
    levels = check_levels(levels, schedule.num_timesteps, x.shape[1])
    b, k, total = x.shape[0], x.shape[1], levels.shape[0] - 1
    for i in range(total):
        t_row = levels[i]
        clean = (t_row == CLEAN).to(x.device)
        t = t_row.clamp(min=0).to(x.device)
        pred = denoiser(x, t.expand(b, k), clean.expand(b, k))
        if pred.shape != x.shape:
            raise ValueError(f"denoiser output must have the shape of x_t: expected {tuple(x.shape)}, got {tuple(pred.shape)}")
        new, x0 = ddim_level_step(x, pred, schedule, t_row, levels[i + 1], prediction=prediction, eta=eta,
                                  generator=generator)
        if callback is not None:
            callback(i, total, x, x0)
        x = new
    return x
