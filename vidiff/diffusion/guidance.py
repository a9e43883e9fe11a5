"""Guidance and the image-generation parameters, as wrappers and plain functions (samplers never see them).

- :func:`classifier_free_guidance` wraps ``model_fn(x, t, context)`` into a ``denoiser(x, t)`` (k-diffusion's
  ``CFGDenoiser``), so any sampler can use it.
- :func:`scale_conditioning` and :func:`mix_conditioning` act on the conditioning itself.
- :func:`threshold_x0` (static clipping, Imagen's dynamic thresholding) is applied by the samplers to x0_hat when
  ``sample(..., threshold=...)`` asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from vidiff.diffusion.utils import append_dims, check_choice

THRESHOLDS = (None, "static", "dynamic")

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ModelFn = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]


def _expand_batch(c: Any, b: int) -> Any:
    """Expands a batch axis of size 1 to ``b`` (so a single null context serves a whole batch)."""
    if isinstance(c, torch.Tensor):
        return c.expand(b, *c.shape[1:]) if c.ndim >= 1 and c.shape[0] == 1 and b != 1 else c
    if isinstance(c, Mapping):
        return {k: _expand_batch(v, b) for k, v in c.items()}
    if isinstance(c, (list, tuple)):
        return type(c)(_expand_batch(v, b) for v in c)
    return c


def _cat_batch(a: Any, b: Any) -> Any:
    """Concatenates two contexts along the batch axis: tensors, or dicts / lists / tuples of tensors.

    Raises TypeError when the structures cannot be concatenated (e.g. ``None``).
    """
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.cat([a, b.to(a.dtype)])
    if isinstance(a, Mapping) and isinstance(b, Mapping) and a.keys() == b.keys():
        return {k: _cat_batch(a[k], b[k]) for k in a}
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return type(a)(_cat_batch(x, y) for x, y in zip(a, b))
    raise TypeError(f"cannot batch contexts of types {type(a).__name__} and {type(b).__name__}")


def classifier_free_guidance(
    model_fn: ModelFn,
    context: Any,
    null_context: Any,
    scale: float,
    negative_context: Any = None,
) -> Denoiser:
    """Classifier-free guidance (Ho & Salimans 2022, eq. 6) as a denoiser wrapper.

    ``pred = pred(x, u) + scale * (pred(x, c) - pred(x, u))`` with ``u = negative_context`` if given, else
    ``null_context``. The combination is linear, so it is exact in whatever parameterisation the model predicts
    (eps, x0 or v: the guided eps of a v-model equals the guided v converted to eps). Conditional and unconditional
    predictions come from ONE model call on the batch ``cat([x, x])``; contexts whose batch axis is 1 are expanded
    to x's batch. Contexts that cannot be concatenated (e.g. ``None`` as the null context) fall back to two calls.

    Args:
        model_fn: ``model_fn(x, t, context) -> prediction`` with ``x`` ``(b, ...)`` and ``t`` LongTensor ``(b,)``.
        context: The conditioning, a tensor ``(b or 1, ...)`` or a dict / list / tuple of them.
        null_context: The unconditional ("empty prompt") conditioning, same structure.
        scale: Guidance scale s: 0 gives the unconditional prediction, 1 the conditional one.
        negative_context: Optional negative prompt used in place of ``null_context``.

    Returns:
        ``denoiser(x, t) -> prediction``.
    """
    uncond_context = null_context if negative_context is None else negative_context
    scale = float(scale)

    def denoiser(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        cond, uncond = _expand_batch(context, b), _expand_batch(uncond_context, b)
        try:
            both = _cat_batch(uncond, cond)
        except TypeError:
            pred_uncond, pred_cond = model_fn(x, t, uncond), model_fn(x, t, cond)
        else:
            pred_uncond, pred_cond = model_fn(torch.cat([x, x]), torch.cat([t, t]), both).chunk(2)
        return pred_uncond + scale * (pred_cond - pred_uncond)

    return denoiser


def scale_conditioning(c: torch.Tensor, strength: float) -> torch.Tensor:
    """Conditioning strength: ``c <- strength * c`` (1 keeps it, 0 removes it)."""
    return c * strength


def mix_conditioning(c1: torch.Tensor, c2: torch.Tensor, a: float) -> torch.Tensor:
    """A weighted mix of two conditionings: ``c <- a * c1 + (1 - a) * c2``."""
    if c1.shape != c2.shape:
        raise ValueError(f"c2 must have the shape of c1: expected {tuple(c1.shape)}, got {tuple(c2.shape)}")
    return a * c1 + (1 - a) * c2


def _quantile_per_sample(x: torch.Tensor, q: float) -> torch.Tensor:
    """Per-sample quantile over all non-batch elements with linear interpolation (numpy's default), ``(b,)``.

    Sort-based, so unlike ``torch.quantile`` it has no limit on the number of elements.
    """
    flat = x.reshape(x.shape[0], -1).float()
    n = flat.shape[1]
    pos = q * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    ordered = flat.sort(dim=1).values
    return ordered[:, lo] + frac * (ordered[:, hi] - ordered[:, lo])


def dynamic_threshold(x0: torch.Tensor, percentile: float = 0.995) -> torch.Tensor:
    """Imagen's dynamic thresholding (Saharia et al. 2022, sec. 2.3): ``s = max(1, quantile_p(|x0|))`` per sample
    over all non-batch elements; ``x0 <- clip(x0, -s, s) / s``. Leaves samples already in [-1, 1] unchanged.

    Args:
        x0: ``(b, ...)`` predicted clean data.
        percentile: p in (0, 1].
    """
    if not 0 < percentile <= 1:
        raise ValueError(f"dynamic_percentile must lie in (0, 1]; got {percentile!r}")
    s = _quantile_per_sample(x0.abs(), percentile).clamp_min(1.0)
    s = append_dims(s, x0.ndim).to(x0.dtype)
    return torch.maximum(torch.minimum(x0, s), -s) / s


def static_threshold(x0: torch.Tensor) -> torch.Tensor:
    """Static clipping of x0_hat to [-1, 1] (DDPM's ``clip_denoised``)."""
    return x0.clamp(-1.0, 1.0)


def threshold_x0(x0: torch.Tensor, threshold: str | None, percentile: float = 0.995) -> torch.Tensor:
    """Applies ``threshold`` in ``None`` (identity), ``"static"`` or ``"dynamic"`` to x0_hat ``(b, ...)``."""
    check_choice("threshold", threshold, THRESHOLDS)
    if threshold is None:
        return x0
    if threshold == "static":
        return static_threshold(x0)
    return dynamic_threshold(x0, percentile)
