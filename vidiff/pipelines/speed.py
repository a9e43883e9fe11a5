"""Levers on the cost of one network evaluation in sampling: inference mode, bf16 autocast, channels-last, compile.

:class:`Speed` names the levers, each with its own switch; :func:`accelerate` applies them to a
:class:`VideoModel` by wrapping its net in a :class:`FastNet`. With every lever off the model is returned as it
is. Inference mode is on by default: it gives the same numbers bit for bit. The others change the arithmetic and
are opt-in. Figures and tolerances: docs/benchmarks.md, "Cost of one sampling step"
(``scripts/bench_sample_step.py``).
"""

from __future__ import annotations

import dataclasses
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from vidiff.pipelines.model import VideoModel

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class Speed:
    """Which levers to pull.

    Attributes:
        precision: ``fp32`` or ``bf16`` (``torch.autocast`` in bfloat16 on the net's device; norms stay fp32).
        inference: run the net under ``torch.inference_mode`` when gradients are off (same numbers, less
            bookkeeping). Calls made with gradients on (reconstruction guidance) run as usual.
        channels_last: the U-Net in channels-last memory format (its ``channels_last`` option).
        compile: ``torch.compile`` the net (the first call compiles: minutes on a CPU).
    """

    precision: str = "fp32"
    inference: bool = True
    channels_last: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision: expected one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    @property
    def is_plain(self) -> bool:
        """True when no lever is pulled."""
        return self == Speed(inference=False)


class FastNet(nn.Module):
    """A sampling net behind the levers of a :class:`Speed`; its output is float32 and a normal tensor."""

    def __init__(self, net: nn.Module, speed: Speed) -> None:
        super().__init__()
        if speed.channels_last:
            if not hasattr(net, "channels_last"):
                raise ValueError("channels_last: the net has no channels_last option (a vidiff SpaceTimeUNet has)")
            net.channels_last = True
            net.to(memory_format=torch.channels_last)
        self.net = net
        self.speed = speed
        self._body = torch.compile(net) if speed.compile else net
        self._dtype = torch.bfloat16 if speed.precision == "bf16" else None

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        inference = self.speed.inference and not torch.is_grad_enabled()
        with torch.inference_mode() if inference else nullcontext():
            with torch.autocast(x.device.type, dtype=self._dtype, enabled=self._dtype is not None):
                out = self._body(x, *args, **kwargs)
            out = out.float()
        return out.clone() if out.is_inference() else out  # later in-place updates need a normal tensor


def accelerate(model: VideoModel, speed: Speed | None = None) -> VideoModel:
    """``model`` with its net behind ``speed``'s levers (default :class:`Speed`: inference mode only); a model
    whose net is not an ``nn.Module`` (an analytic denoiser) or with every lever off is returned unchanged."""
    speed = Speed() if speed is None else speed
    if speed.is_plain or not isinstance(model.net, nn.Module):
        return model
    return dataclasses.replace(model, net=FastNet(model.net, speed))
