"""Input validation for :class:`~vidiff.nn.unet.SpaceTimeUNet`: clear ValueErrors for shapes that do not fit."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from vidiff.nn.unet import SpaceTimeUNet


def _frames_arg(name: str, value: torch.Tensor | None, b: int, t: int, image_input: bool) -> torch.Tensor | None:
    if value is None:
        return None
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(value)
    if image_input and value.shape == (b,):
        value = value[:, None]
    if value.shape != (b, t):
        expected = f"({b}, {t})" + (f" or ({b},)" if image_input else "")
        raise ValueError(f"{name} must have shape (b, t) = {expected} to match x, got {tuple(value.shape)}")
    return value


def check_inputs(
    model: SpaceTimeUNet,
    x: torch.Tensor,
    timesteps: torch.Tensor | float,
    frame_idx: torch.Tensor | None,
    observed: torch.Tensor | None,
    context: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate and complete the U-Net's inputs.

    Returns:
        ``x`` as ``(b, t, c, h, w)``, ``timesteps`` ``(b,)`` or ``(b, t)``, ``frame_idx`` ``(b, t)`` long (default ``arange(t)``),
        ``observed`` ``(b, t)`` bool (default all False).

    Raises:
        ValueError: Wrong rank or channels of ``x``; spatial size not divisible by ``2 ** (levels - 1)``;
            ``timesteps``, ``frame_idx`` or ``observed`` shapes not matching ``x``; ``context`` of the wrong shape,
            or given to a model without cross-attention.
    """
    image_input = x.ndim == 4
    if image_input:
        x = x[:, None]
    if x.ndim != 5:
        raise ValueError(f"x must be (b, t, c, h, w) or (b, c, h, w), got rank {x.ndim} shape {tuple(x.shape)}")
    b, t, c, h, w = x.shape
    if c != model.in_channels:
        raise ValueError(f"x must have {model.in_channels} channels (in_channels) at axis 2, got shape {tuple(x.shape)}")
    factor = 2 ** (model.num_levels - 1)
    if h % factor or w % factor:
        raise ValueError(
            f"x height and width must be divisible by {factor} (2 ** (levels - 1)), got {h}x{w} in shape {tuple(x.shape)}"
        )
    timesteps = torch.as_tensor(timesteps, device=x.device)
    if timesteps.ndim == 0:
        timesteps = timesteps.expand(b)
    if timesteps.shape != (b,) and timesteps.shape != (b, t):
        raise ValueError(
            f"timesteps must have shape (b,) = ({b},) or, one per frame, (b, t) = ({b}, {t}); got"
            f" {tuple(timesteps.shape)}"
        )
    frame_idx = _frames_arg("frame_idx", frame_idx, b, t, image_input)
    if frame_idx is None:
        frame_idx = torch.arange(t, device=x.device).expand(b, t)
    observed = _frames_arg("observed", observed, b, t, image_input)
    observed = torch.zeros(b, t, dtype=torch.bool, device=x.device) if observed is None else observed.bool()
    if context is not None:
        if model.context_dim is None:
            raise ValueError(
                f"context was given (shape {tuple(context.shape)}) but the model has no cross-attention"
                " (context_dim=None)"
            )
        if context.ndim != 3 or context.shape[0] != b or context.shape[2] != model.context_dim:
            raise ValueError(
                f"context must have shape (b, L, context_dim) = ({b}, L, {model.context_dim}), got {tuple(context.shape)}"
            )
    return x, timesteps, frame_idx.to(x.device), observed.to(x.device)
