"""Context use: does a conditional video denoiser use the frames it is given?

For fixed clips, fixed noise and a few noise levels ``t/T``, the latent frames are denoised twice in one call
each: once with the clip's own observed frames, once with another clip's observed frames in their place (same
positions, same noise, same latent input). The *context-use ratio* at a level is

    ratio = mse(x0_hat_other, x0) / mse(x0_hat_own, x0)     over latent (valid) frames only

1.0 means the observed frames are ignored; above 1 the model's guess of the latent frames depends on them and
is better with the right ones. At low noise a frame reveals itself, so the ratio is near 1 for any model;
it is at high noise (``t/T >= 0.8``) that a model which uses its context must score well above 1.

Plain torch: the net is any callable ``net(x, t, frame_idx, observed, context) -> prediction``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from vidiff.diffusion.schedule import NoiseSchedule

#: Noise levels ``t/T`` reported by default.
DEFAULT_LEVELS: tuple[float, ...] = (0.3, 0.6, 0.8, 0.95)


def prediction_mask(frame_idx: torch.Tensor, num_observed: int | None = None) -> torch.Tensor:
    """``(b, k)`` bool: the ``num_observed`` earliest frames of each clip observed (default: half, at least 1)."""
    k = frame_idx.shape[1]
    n = max(1, k // 2) if num_observed is None else num_observed
    if not 1 <= n < k:
        raise ValueError(f"num_observed: expected an integer in [1, {k - 1}] for {k} frames, got {n}")
    rank = frame_idx.argsort(dim=1).argsort(dim=1)  # position of each slot in frame order
    return rank < n


def level_timestep(level: float, num_timesteps: int) -> int:
    """The training timestep of noise level ``level = t/T`` in [0, 1]."""
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"levels: expected noise levels t/T in [0, 1], got {level}")
    return min(num_timesteps - 1, round(level * num_timesteps))


@torch.no_grad()
def context_use(
    net: Callable[..., torch.Tensor],
    schedule: NoiseSchedule,
    prediction: str,
    x0: torch.Tensor,
    frame_idx: torch.Tensor,
    observed: torch.Tensor,
    valid: torch.Tensor | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
    context: torch.Tensor | None = None,
    seed: int = 0,
) -> dict[float, float]:
    """Context-use ratio per noise level (see the module docstring).

    Args:
        net: the denoiser, ``net(x (b,k,c,h,w), t (b,), frame_idx (b,k), observed (b,k), context)``.
        schedule: its training noise schedule.
        prediction: what it predicts (``eps``, ``x0``, ``v``).
        x0: ``(b, k, c, h, w)`` clean clips (what the net models: pixels or latents); ``b >= 2``.
        frame_idx: ``(b, k)`` frame positions.
        observed: ``(b, k)`` bool, the given frames; at least one observed and one latent frame per clip.
        valid: ``(b, k)`` bool, frames that count (default all).
        levels: noise levels ``t/T``.
        context: the net's text context for the clips (kept with its own clip), or None.
        seed: seed of the fixed noise.

    Returns:
        ``{level: ratio}``; "another clip" is the next one in the batch (cyclically).
    """
    b = x0.shape[0]
    if b < 2:
        raise ValueError(f"x0: context use compares clips with each other, so it needs >= 2 clips, got {b}")
    observed = observed.bool()
    valid = torch.ones_like(observed) if valid is None else valid.bool()
    latent = (valid & ~observed)[:, :, None, None, None].to(x0.dtype)
    if not bool((observed & valid).any(1).all()) or not bool(latent.flatten(1).any(1).all()):
        raise ValueError("observed: every clip needs at least one observed and one latent valid frame")
    given = observed[:, :, None, None, None]
    other = x0.roll(1, dims=0)
    generator = torch.Generator(device=x0.device).manual_seed(seed)
    noise = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
    ratios = {}
    for level in levels:
        t = torch.full((b,), level_timestep(level, schedule.num_timesteps), device=x0.device, dtype=torch.long)
        x_t = schedule.q_sample(x0, t, noise)
        errors = []
        for source in (x0, other):
            x_in = torch.where(given, source, x_t)
            pred = net(x_in, t, frame_idx, observed, context).float()
            x0_hat, _ = schedule.to_x0_eps(pred, x_in.float(), t, prediction)
            errors.append(float((((x0_hat - x0.float()) ** 2) * latent).sum()))
        own, swapped = errors
        ratios[float(level)] = swapped / own if own > 0 else (1.0 if swapped == 0 else float("inf"))
    return ratios


def format_context_use(ratios: dict[float, float]) -> str:
    """``{0.3: 1.01, 0.8: 2.4}`` -> ``"t/T=0.3: 1.01, t/T=0.8: 2.40"``."""
    return ", ".join(f"t/T={level:g}: {ratio:.2f}" for level, ratio in ratios.items())
