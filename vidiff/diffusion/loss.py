"""The diffusion training loss: MSE to the parameterisation's target, masked and optionally min-SNR weighted."""

from __future__ import annotations

import torch

from vidiff.diffusion.schedule import PREDICTIONS, NoiseSchedule
from vidiff.diffusion.utils import append_dims, check_broadcastable, check_choice, check_same_shape


def min_snr_weight(snr: torch.Tensor, gamma: float, prediction: str = "eps") -> torch.Tensor:
    """Min-SNR-gamma loss weights (Hang et al. 2023, eq. 7 and sec. 3.4) per parameterisation, same shape as ``snr``.

    The x0 loss is weighted by ``min(snr, gamma)``; an eps loss equals snr times the x0 loss and a v loss
    (snr + 1) times it, hence eps: ``min(snr, gamma) / snr`` (= 1 at snr = 0) and v: ``min(snr, gamma) / (snr + 1)``.
    """
    check_choice("prediction", prediction, PREDICTIONS)
    if not gamma > 0:
        raise ValueError(f"min_snr_gamma must be > 0; got {gamma!r}")
    clipped = snr.clamp(max=gamma)
    if prediction == "x0":
        return clipped
    if prediction == "v":
        return clipped / (snr + 1)
    return (gamma / snr).clamp(max=1.0)  # min(snr, g) / snr, also defined (1) at snr = 0


def diffusion_loss(
    pred: torch.Tensor,
    x0: torch.Tensor,
    noise: torch.Tensor,
    t: torch.Tensor,
    schedule: NoiseSchedule,
    prediction: str = "eps",
    weight: torch.Tensor | None = None,
    min_snr_gamma: float | None = None,
) -> torch.Tensor:
    """Mean squared error between ``pred`` and the target of ``prediction`` (eps: noise, x0: x0, v: get_v).

    ``loss = sum(w * m * err) / sum(w)`` where ``err = (pred - target)^2`` element-wise, ``w`` is ``weight``
    broadcast to ``err``'s shape (all ones if None) and ``m`` the per-sample min-SNR weight (1 if None): masked
    elements (``w == 0``, e.g. observed video frames) count neither in the sum nor in the element count. An
    all-zero weight gives a loss of 0 with zero gradients, not NaN. Computed in float32.

    Args:
        pred: Model output ``(b, ...)``, e.g. ``(b, t, c, h, w)``.
        x0: Clean data, same shape.
        noise: The eps used to make ``x_t = schedule.q_sample(x0, t, noise)``, same shape.
        t: LongTensor ``(b,)`` timesteps, or ``(b, t)`` per video frame (Diffusion Forcing).
        schedule: The noise schedule.
        prediction: ``"eps"``, ``"x0"`` or ``"v"``.
        weight: Non-negative weights or a bool mask with pred's rank, broadcastable to its shape, e.g.
            ``(b, t, 1, 1, 1)`` to weight video frames.
        min_snr_gamma: gamma of min-SNR weighting (5 in the paper), or None.

    Returns:
        A scalar tensor.
    """
    check_choice("prediction", prediction, PREDICTIONS)
    check_same_shape("x0", x0, pred.shape, "pred")
    check_same_shape("noise", noise, pred.shape, "pred")
    if t.ndim not in (1, 2) or tuple(t.shape) != tuple(pred.shape[: t.ndim]):
        raise ValueError(
            f"t must have shape ({pred.shape[0]},) (one timestep per sample) or {tuple(pred.shape[:2])} (one per"
            f" frame); got {tuple(t.shape)}"
        )
    target = schedule.get_target(x0.float(), noise.float(), t, prediction)
    err = (pred.float() - target) ** 2
    if min_snr_gamma is not None:
        snr = schedule.snr(t).to(err.device)
        err = err * append_dims(min_snr_weight(snr, min_snr_gamma, prediction), err.ndim)
    if weight is None:
        return err.mean()
    check_broadcastable("weight", weight, err.shape, "pred")
    w = weight.to(device=err.device, dtype=err.dtype).expand(err.shape)
    total = w.sum()
    # no 0/0 in the forward or the backward pass when every weight is 0
    safe_total = torch.where(total > 0, total, torch.ones_like(total))
    return (w * err).sum() / safe_total
