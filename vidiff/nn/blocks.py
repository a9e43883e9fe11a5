"""Convolutional building blocks of the U-Net, named as latent-diffusion's ``openaimodel.py``.

All blocks work on frames flattened into the batch: ``(b t) c h w``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 (also under autocast) and returned in the input dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            return F.group_norm(
                x.float(), self.num_groups, self.weight.float(), self.bias.float(), self.eps
            ).to(x.dtype)


class LayerNorm32(nn.LayerNorm):
    """LayerNorm computed in float32 (also under autocast) and returned in the input dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            weight = None if self.weight is None else self.weight.float()
            bias = None if self.bias is None else self.bias.float()
            return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).to(x.dtype)


def normalization(channels: int, groups: int = 32, eps: float = 1e-5) -> GroupNorm32:
    """ldm's ``normalization``: 32-group GroupNorm (``groups`` configurable for small models).

    Raises:
        ValueError: ``channels`` is not divisible by ``groups``.
    """
    if channels % groups:
        raise ValueError(f"norm_groups={groups} must divide every channel count; got a layer with {channels} channels")
    return GroupNorm32(groups, channels, eps=eps)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero a module's parameters in place (used for output projections that must start as no-ops)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """Residual block with timestep conditioning (ldm's ``ResBlock``, 2-D).

    ``in_layers`` = (GroupNorm, SiLU, conv3x3); ``emb_layers`` = (SiLU, Linear); ``out_layers`` = (GroupNorm, SiLU,
    Dropout, zero-init conv3x3); ``skip_connection`` = Identity or 1x1 conv. With ``use_scale_shift_norm`` the
    embedding gives a scale and shift after the second norm (adaptive group norm); otherwise it is added before it.

    Args:
        channels: Input channels.
        emb_channels: Timestep-embedding width.
        dropout: Dropout probability before the last conv.
        out_channels: Output channels (default ``channels``).
        use_scale_shift_norm: Adaptive group norm (True) or additive embedding (False, as Stable Diffusion).
        norm_groups: GroupNorm groups.
    """

    def __init__(
        self,
        channels: int,
        emb_channels: int,
        dropout: float = 0.0,
        out_channels: int | None = None,
        use_scale_shift_norm: bool = True,
        norm_groups: int = 32,
    ) -> None:
        super().__init__()
        out_channels = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(
            normalization(channels, norm_groups), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1)
        )
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels if use_scale_shift_norm else out_channels)
        )
        self.out_layers = nn.Sequential(
            normalization(out_channels, norm_groups),
            nn.SiLU(),
            nn.Dropout(p=dropout),
            zero_module(nn.Conv2d(out_channels, out_channels, 3, padding=1)),
        )
        self.skip_connection = (
            nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """``x``: ``(n, c, h, w)``; ``emb``: ``(n, emb_channels)``. Returns ``(n, out_channels, h, w)``."""
        h = self.in_layers(x)
        emb_out = self.emb_layers(emb).to(h.dtype)[:, :, None, None]
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            for layer in self.out_layers[1:]:
                h = layer(h)
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


class Downsample(nn.Module):
    """Stride-2 3x3 convolution (ldm's ``Downsample`` with ``conv_resample``): ``op``."""

    def __init__(self, channels: int, out_channels: int | None = None) -> None:
        super().__init__()
        self.op = nn.Conv2d(channels, out_channels or channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, c, h, w) -> (n, c_out, h / 2, w / 2)``."""
        return self.op(x)


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling then a 3x3 convolution (ldm's ``Upsample``): ``conv``."""

    def __init__(self, channels: int, out_channels: int | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, out_channels or channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, c, h, w) -> (n, c_out, 2h, 2w)``."""
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
