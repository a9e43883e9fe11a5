"""One model evaluation inside a sampler, with the hooks every sampler shares.

:func:`denoise` is the only place where samplers call the denoiser. It (1) imposes the known region on x_t,
(2) calls ``denoiser(x_t, t)``, (3) converts the prediction to ``(x0_hat, eps_hat)``, (4) thresholds x0_hat and
recomputes eps_hat from it, and (5) reports progress. Samplers that step through noise levels between the
training timesteps (Karras / exponential sigmas) pass the level's alpha-bar; the model is told the nearest
timestep and everything else uses the level. The update rules in :mod:`vidiff.diffusion.samplers` only
see ``(x0_hat, eps_hat)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from vidiff.diffusion.guidance import THRESHOLDS, Denoiser, threshold_x0
from vidiff.diffusion.schedule import PREDICTIONS, NoiseSchedule
from vidiff.diffusion.utils import check_broadcastable, check_choice, check_same_shape

Callback = Callable[[int, int, torch.Tensor, torch.Tensor], None]
Generators = torch.Generator | Sequence[torch.Generator] | None


def check_generator(generator: Generators, batch: int) -> None:
    """Raises ValueError unless ``generator`` is None, a ``torch.Generator`` or a sequence of ``batch`` of them."""
    if generator is None or isinstance(generator, torch.Generator):
        return
    if not isinstance(generator, Sequence) or not all(isinstance(g, torch.Generator) for g in generator):
        raise ValueError(
            f"generator must be a torch.Generator or a list of them; got {type(generator).__name__}"
        )
    if len(generator) != batch:
        raise ValueError(
            f"generator: a list needs one generator per sample: expected {batch}, got {len(generator)}"
        )


def randn_like(x: torch.Tensor, generator: Generators) -> torch.Tensor:
    """Standard normal noise shaped like ``x`` on x's device and dtype.

    Args:
        x: ``(b, ...)``.
        generator: None (global RNG), one ``torch.Generator`` for the batch, or a sequence of ``b`` generators, one
            per sample (diffusers' convention: a sample's noise then does not depend on the rest of the batch).
    """
    if generator is None or isinstance(generator, torch.Generator):
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    check_generator(generator, x.shape[0])
    return torch.stack(
        [torch.randn(x.shape[1:], generator=g, device=x.device, dtype=x.dtype) for g in generator]
    )


@dataclass
class SamplingHooks:
    """Options that every sampler applies at each model evaluation.

    Attributes:
        prediction: What the denoiser predicts: ``"eps"``, ``"x0"`` or ``"v"``.
        threshold: ``None``, ``"static"`` (clip x0_hat to [-1, 1]) or ``"dynamic"`` (Imagen).
        dynamic_percentile: p of dynamic thresholding.
        known: Known content ``(b, ...)``, x's shape, or None.
        known_mask: Bool tensor of x's rank, broadcastable to x's shape; True where ``known`` applies.
        known_noised: True: known elements of x_t are replaced by ``q_sample(known, t, fresh noise)`` (blended latent
            diffusion, inpainting). False: by the clean ``known`` (observed video frames, as vidiff trains them).
        callback: ``callback(step_index, total, x_t, x0_hat)`` after each model evaluation, or None.
    """

    prediction: str = "eps"
    threshold: str | None = None
    dynamic_percentile: float = 0.995
    known: torch.Tensor | None = None
    known_mask: torch.Tensor | None = None
    known_noised: bool = True
    callback: Callback | None = None

    def validate(self, x: torch.Tensor) -> SamplingHooks:
        """Checks names and shapes against the sampler's state ``x`` and returns hooks with ``known`` and
        ``known_mask`` moved to x's device (and ``known`` to x's dtype)."""
        check_choice("prediction", self.prediction, PREDICTIONS)
        check_choice("threshold", self.threshold, THRESHOLDS)
        if not 0 < self.dynamic_percentile <= 1:
            raise ValueError(f"dynamic_percentile must lie in (0, 1]; got {self.dynamic_percentile!r}")
        if (self.known is None) != (self.known_mask is None):
            raise ValueError(
                "known and known_mask must be given together; got only "
                + ("known" if self.known is not None else "known_mask")
            )
        if self.known is None:
            return self
        check_same_shape("known", self.known, x.shape, "noise")
        if self.known_mask.dtype != torch.bool:
            raise ValueError(f"known_mask must be a bool tensor; got dtype {self.known_mask.dtype}")
        check_broadcastable("known_mask", self.known_mask, x.shape, "noise")
        known = self.known.to(device=x.device, dtype=x.dtype)
        mask = self.known_mask.to(x.device)
        return SamplingHooks(
            self.prediction,
            self.threshold,
            self.dynamic_percentile,
            known,
            mask,
            self.known_noised,
            self.callback,
        )

    def impose_known(
        self,
        x: torch.Tensor,
        t: int,
        schedule: NoiseSchedule,
        generator: Generators,
        alpha_bar: float | None = None,
    ) -> torch.Tensor:
        """x_t with its known elements replaced by ``known`` noised to step t, or to the level ``alpha_bar`` when
        given (or clean, see ``known_noised``)."""
        if self.known is None:
            return x
        if not self.known_noised:
            content = self.known
        elif alpha_bar is None:
            content = schedule.q_sample(self.known, t, randn_like(x, generator))
        else:
            content = math.sqrt(alpha_bar) * self.known + math.sqrt(1 - alpha_bar) * randn_like(x, generator)
        return torch.where(self.known_mask, content, x)

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        """The final sample with its known elements set exactly to ``known``."""
        return x if self.known is None else torch.where(self.known_mask, self.known, x)


def x0_eps_at_level(
    pred: torch.Tensor, x_t: torch.Tensor, alpha_bar: float, prediction: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """:meth:`NoiseSchedule.to_x0_eps` at a noise level ``alpha_bar`` in (0, 1) instead of a training timestep."""
    sa, s1a = math.sqrt(alpha_bar), math.sqrt(1 - alpha_bar)
    if prediction == "eps":
        return (x_t - s1a * pred) / sa, pred
    if prediction == "x0":
        return pred, (x_t - sa * pred) / s1a
    return sa * x_t - s1a * pred, s1a * x_t + sa * pred


def denoise(
    denoiser: Denoiser,
    x: torch.Tensor,
    t: int,
    schedule: NoiseSchedule,
    hooks: SamplingHooks,
    generator: Generators,
    step_index: int,
    total: int,
    alpha_bar: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One model evaluation at timestep ``t`` (the same for the whole batch).

    Args:
        denoiser: ``denoiser(x_t, t) -> prediction`` with t a LongTensor ``(b,)``.
        x: x_t ``(b, ...)``.
        t: The original (training) timestep.
        schedule: The noise schedule the model was trained with.
        hooks: Validated :class:`SamplingHooks`.
        generator: Source of the known region's fresh noise (see :func:`randn_like`).
        step_index: 0-based index of this step, for the callback.
        total: Number of steps of the run, for the callback.
        alpha_bar: The noise level x_t is at when it is not the schedule's at ``t`` (Karras / exponential
            sigmas: ``t`` is then the timestep the model is told); None for ``alphas_cumprod[t]``.

    Returns:
        ``(x_t, x0_hat, eps_hat)`` where x_t carries the imposed known region.
    """
    x = hooks.impose_known(x, t, schedule, generator, alpha_bar)  # 1. known region
    t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
    pred = denoiser(x, t_batch)  # 2. model
    if pred.shape != x.shape:
        raise ValueError(
            f"denoiser output must have the shape of x_t: expected {tuple(x.shape)}, got {tuple(pred.shape)}"
        )
    pred = pred.to(x.dtype)
    if alpha_bar is None:  # 3. (x0_hat, eps_hat)
        x0, eps = schedule.to_x0_eps(pred, x, t, hooks.prediction)
    else:
        x0, eps = x0_eps_at_level(pred, x, alpha_bar, hooks.prediction)
    if hooks.threshold is not None:  # 4. thresholding, eps_hat consistent with the new x0_hat
        x0 = threshold_x0(x0, hooks.threshold, hooks.dynamic_percentile)
        if alpha_bar is None:
            eps = schedule.predict_eps(x, t, x0)
        else:
            eps = x0_eps_at_level(x0, x, alpha_bar, "x0")[1]
    if hooks.callback is not None:  # 5. progress
        hooks.callback(step_index, total, x, x0)
    return x, x0, eps
