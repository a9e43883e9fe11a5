"""The one conditioned denoiser: a vidiff network closed over its conditioning, as a sampler's ``denoiser(x, t)``.

Samplers see only ``denoiser(x_t, t) -> prediction`` (:mod:`vidiff.diffusion`). :func:`conditioned_denoiser`
builds it from ``net(x, t, frame_idx, observed, context)`` for every generation path (long-video stages,
per-frame windows, text-to-image, validation samples):

* frame conditioning: the window's ``frame_idx`` and ``observed`` mask (None for an image, ``t = 1``);
* reconstruction guidance (:func:`reconstruction_guidance`, Ho et al. 2022, eq. 7) or history guidance
  (:func:`history_guided`, Song et al. 2025) in place of the plain conditional model;
* classifier-free guidance (:func:`vidiff.diffusion.classifier_free_guidance`, Ho & Salimans 2022) with the
  negative prompt (or the null embedding) as the unconditional context, one batched call for both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from vidiff.diffusion.guidance import Denoiser, classifier_free_guidance
from vidiff.pipelines.model import NetFn

#: ``model_fn(x, t, context) -> prediction``: the network with everything but the text context fixed.
ModelFn = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]


def conditioned_denoiser(
    net: NetFn,
    frame_idx: torch.Tensor | None = None,
    observed: torch.Tensor | None = None,
    *,
    context: torch.Tensor | None = None,
    null_context: torch.Tensor | None = None,
    guidance: float = 1.0,
    schedule: Any = None,
    prediction: str = "eps",
    known: torch.Tensor | None = None,
    recon_guidance: float = 0.0,
    recon_noise: torch.Tensor | None = None,
    history_guidance: float = 1.0,
    history_noise: torch.Tensor | None = None,
    history_level: int | None = None,
) -> Denoiser:
    """``denoiser(x (b, k, c, h, w), t) -> prediction`` of ``net`` under the given conditioning.

    Args:
        net: ``net(x, timesteps, frame_idx, observed, context)``.
        frame_idx: ``(b, k)`` frame positions, or None (one image per sample: the U-Net's image mode).
        observed: ``(b, k)`` bool, the frames shown clean (read from ``x``, kept by the sampler's known hook).
        context: ``(b, L, d)`` text context, or None.
        null_context: ``(b or 1, L, d)`` what classifier-free guidance pushes away from (negative prompt or the
            null embedding), or None.
        guidance: classifier-free guidance scale (applied when both contexts are given and it is not 1).
        schedule, prediction: the noise schedule and parameterisation (reconstruction guidance).
        known: ``(b, k, c, h, w)`` the clean observed frames (reconstruction guidance).
        recon_guidance: w_r of :func:`reconstruction_guidance`; 0 is off.
        recon_noise: ``(b, k, c, h, w)`` the noise that takes the observed frames to level t.
        history_guidance: s of :func:`history_guided` for windows with observed frames; 1 is off.
        history_noise: ``(b, k, c, h, w)`` the dropped history's fixed noise.
        history_level: the timestep it is shown at (default the schedule's last).
    """
    with_history = history_guidance != 1.0 and observed is not None and bool(observed.any())
    if recon_guidance > 0:
        if with_history:
            raise ValueError("history_guidance: not available together with recon_guidance")
        model_fn = reconstruction_guidance(net, schedule, prediction, frame_idx, observed, known, recon_noise,
                                           recon_guidance)
    elif with_history:
        top = schedule.num_timesteps - 1 if history_level is None else history_level
        model_fn = history_guided(net, frame_idx, observed, top, history_guidance, history_noise)
    else:
        model_fn = frame_conditioned(net, frame_idx, observed)
    if context is not None and null_context is not None and guidance != 1.0:
        return classifier_free_guidance(model_fn, context, null_context, guidance)

    def denoiser(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return model_fn(x, t, context)

    return denoiser


def frame_conditioned(net: NetFn, frame_idx: torch.Tensor | None, observed: torch.Tensor | None) -> ModelFn:
    """The conditional model ``model_fn(x, t, context)``: observed frames clean and marked, as in training.

    Classifier-free guidance stacks the conditional and unconditional batches, so the masks are repeated to
    ``x``'s batch.
    """

    def model_fn(x: torch.Tensor, t: torch.Tensor, ctx: Any) -> torch.Tensor:
        if frame_idx is None:
            return net(x, t, None, None, ctx)
        reps = x.shape[0] // frame_idx.shape[0]
        return net(x, t, frame_idx.repeat(reps, 1), observed.repeat(reps, 1), ctx)

    return model_fn


def per_video(
    context: torch.Tensor | None, null_context: torch.Tensor | None, videos: torch.Tensor
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The contexts of a batch's items: ``context`` ``(n, L, d)`` and ``null_context`` ``(n or 1, L, d)`` indexed by
    each item's video (a single null context is shared)."""
    ctx = None if context is None else context[videos]
    null = None if null_context is None else null_context[videos] if len(null_context) > 1 else null_context
    return ctx, null


def reconstruction_guidance(
    net: NetFn,
    schedule: Any,
    prediction: str,
    frame_idx: torch.Tensor,
    observed: torch.Tensor,
    known: torch.Tensor,
    noise: torch.Tensor,
    weight: float,
) -> Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]:
    """Reconstruction guidance (Ho et al. 2022, "Video Diffusion Models", eq. 7) as a ``model_fn(x, t, context)``.

    The model denoises all k frames jointly (no frame marked observed); the observed frames x_b enter noised to
    the current level, ``z_b = q_sample(x_b, t, noise)``, and the latent frames' prediction is corrected by the
    gradient of how badly the model reconstructs x_b:

        x_tilde_a = x_hat_a - (w_r * alpha_t / 2) * grad_{z_a} || x_b - x_hat_b ||^2,

    with ``alpha_t = sqrt(alpha-bar_t)`` (the signal scale) and w_r = ``weight``. Ho et al. find w_r > 1
    (they use values around 2 to 10) makes conditional samples coherent with x_b; larger values over-sharpen.
    The result is returned in the model's parameterisation (eps, x0 or v) relative to the sampler's ``x``.
    Needs gradients through the network (``torch.enable_grad`` is switched on inside).

    Args:
        net: ``net(x, timesteps, frame_idx, observed, context)``.
        schedule: the noise schedule (``q_sample``, ``to_x0_eps``, ``at``, ``predict_eps``).
        prediction: ``eps``, ``x0`` or ``v``.
        frame_idx: ``(b, k)`` frame positions.
        observed: ``(b, k)`` bool, the frames x_b.
        known: ``(b, k, c, h, w)`` clean frames (read where ``observed``).
        noise: ``(b, k, c, h, w)`` the noise that takes x_b to level t (fixed through the run).
        weight: w_r.
    """

    def model_fn(x: torch.Tensor, t: torch.Tensor, context: Any) -> torch.Tensor:
        reps = x.shape[0] // frame_idx.shape[0]  # classifier-free guidance stacks cond and uncond
        obs, fidx = observed.repeat(reps, 1), frame_idx.repeat(reps, 1)
        kn, nz = known.repeat(reps, 1, 1, 1, 1), noise.repeat(reps, 1, 1, 1, 1)
        mask = obs[:, :, None, None, None]
        z_b = schedule.q_sample(kn, t, nz)
        with torch.enable_grad():
            z_a = x.detach().requires_grad_(True)
            z = torch.where(mask, z_b, z_a)
            pred = net(z, t, fidx, torch.zeros_like(obs), context)
            x0, _ = schedule.to_x0_eps(pred, z, t, prediction)
            err = ((kn - x0) ** 2 * mask).sum()  # a sum over the batch: per-sample gradients
            (grad,) = torch.autograd.grad(err, z_a)
        alpha = schedule.at("sqrt_alphas_cumprod", t, x)
        x0_tilde = torch.where(mask, kn, x0.detach() - (weight * alpha / 2) * grad)
        if prediction == "x0":
            return x0_tilde
        eps = schedule.predict_eps(x, t, x0_tilde)
        if prediction == "eps":
            return eps
        return schedule.get_v(x0_tilde, eps, t)

    return model_fn


def history_guided(
    net: NetFn, frame_idx: torch.Tensor, observed: torch.Tensor, top: int, scale: float, noise: torch.Tensor
) -> Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]:
    """History guidance for stage schemes (Song et al. 2025) as a ``model_fn(x, t, context)``.

    Returns ``uncond + scale * (cond - uncond)``. The conditional branch is the plain conditional model (observed
    frames clean and marked observed); the unconditional one drops the history: the observed slots show the
    fixed pure ``noise`` at timestep ``top`` (per-frame timesteps) and are not marked observed, the latent frames
    are unchanged, an input the model learnt from its unconditional and per-frame-noise training samples. Both
    branches run in one forward batch.
    """
    obs = observed.bool()

    def guided(x: torch.Tensor, t: torch.Tensor, ctx: Any) -> torch.Tensor:
        b, k = x.shape[:2]
        reps = b // obs.shape[0]
        o = obs.repeat(reps, 1)
        m = o[:, :, None, None, None]
        x_u = torch.where(m, noise.repeat(reps, 1, 1, 1, 1).to(x.dtype), x)
        t_c = t if t.ndim == 2 else t.reshape(-1)[:, None].expand(b, k)
        t_u = torch.where(o, torch.full_like(t_c, top), t_c)
        idx = frame_idx.repeat(2 * reps, 1)
        out = net(torch.cat([x, x_u]), torch.cat([t_c, t_u]), idx, torch.cat([o, torch.zeros_like(o)]),
                  None if ctx is None else torch.cat([ctx, ctx]))
        cond, uncond = out.chunk(2)
        return uncond + scale * (cond - uncond)

    return guided
