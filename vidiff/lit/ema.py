"""Exponential moving average (EMA) of a network's weights.

The average lives in its own frozen copy of the network (``EMA.shadow``), a submodule of the Lightning module,
so it is part of ``state_dict()`` (keys ``ema.shadow.*`` and ``ema.num_updates``) and travels in every checkpoint
with its step counter. Nothing is ever swapped into the trained network: sampling with EMA weights simply calls
``ema.shadow``, so a checkpoint can never capture EMA weights in place of the raw ones.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """EMA of ``model``'s parameters; buffers (e.g. norm statistics) are copied as they are.

    The decay of update ``n`` (counted from 0) is ``min(decay, (1 + n) / (10 + n))`` with ``warmup=True``
    (latent-diffusion's ``LitEma``), so early averages are not dominated by the random initialisation;
    plain ``decay`` otherwise.

    Args:
        model: the network to average; a deep copy of it becomes :attr:`shadow`.
        decay: target decay in [0, 1).
        warmup: use the warm-up schedule above.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema_decay: expected a number in [0, 1), got {decay}")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.shadow = copy.deepcopy(model).requires_grad_(False)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def current_decay(self) -> float:
        """The decay the next :meth:`update` will use."""
        n = int(self.num_updates)
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """``shadow <- d * shadow + (1 - d) * model`` for every parameter (buffers copied), then count the update."""
        d = self.current_decay()
        model_params = dict(model.named_parameters())
        shadows = [p for _, p in self.shadow.named_parameters()]
        sources = [model_params[name].detach().to(p.dtype) for name, p in self.shadow.named_parameters()]
        if shadows:  # one fused kernel for all parameters (as timm's ModelEmaV3); same values as per-tensor lerp_
            torch._foreach_lerp_(shadows, sources, 1.0 - d)
        model_buffers = dict(model.named_buffers())
        for name, shadow in self.shadow.named_buffers():
            shadow.copy_(model_buffers[name])
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite ``model``'s parameters and buffers with the averaged ones (for inference only)."""
        model.load_state_dict(self.shadow.state_dict())

    def extra_repr(self) -> str:
        return f"decay={self.decay}, warmup={self.warmup}"
