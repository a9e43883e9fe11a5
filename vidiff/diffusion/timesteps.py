"""Training timestep distributions: which noise levels the loss sees, and how often.

``uniform``
    ``t ~ U{0, ..., T-1}`` (DDPM).
``logit_normal``
    ``t = floor(T * sigmoid(m + s z))``, ``z ~ N(0, 1)`` (Esser et al. 2024, "Scaling rectified flow
    transformers", sec. 3.1). ``m > 0`` puts more of the training signal at high noise, where a video model
    must rely on its observed frames because the latent frames themselves are nearly gone.
"""

from __future__ import annotations

import torch

TIMESTEP_SAMPLING: tuple[str, ...] = ("uniform", "logit_normal")


def draw_timesteps(
    kind: str,
    batch: int,
    num_timesteps: int,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
    mean: float = 0.0,
    std: float = 1.0,
) -> torch.Tensor:
    """LongTensor ``(batch,)`` of training timesteps in ``[0, num_timesteps)`` drawn from ``kind``."""
    if kind == "uniform":
        return torch.randint(0, num_timesteps, (batch,), device=device, generator=generator)
    if kind == "logit_normal":
        z = torch.randn(batch, device=device, generator=generator, dtype=torch.float64)
        u = torch.sigmoid(mean + std * z)
        return (u * num_timesteps).long().clamp_(0, num_timesteps - 1)
    raise ValueError(f"timestep_sampling: expected one of {list(TIMESTEP_SAMPLING)}, got {kind!r}")
