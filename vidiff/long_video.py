"""The long-video executor: runs a scheme's plan with a model and any sampler of the diffusion core.

A plan (:func:`vidiff.schemes.plan`) is a list of stages, each generating its ``latent`` frames given its
``observed`` frames. The executor

* groups stages into waves (:func:`vidiff.schemes.batches`: a wave's stages depend only on earlier waves), and
  each wave into forward batches of stage x video *items* of **equal frame count**, at most ``batch_budget``
  items each. Stages are never padded to a common length: padding frames would take part in temporal
  attention and change the result, so each unique stage size in a wave runs as its own batch.
* draws each item's noise from its own generator seeded by ``(seed, video, stage)`` (and passes the
  per-item generators to the sampler for its per-step noise), so batched and sequential execution give the
  same numbers and a run is deterministic for a seed;
* keeps observed frames fixed through the sampler's known-region hook (clean frames, ``known_noised=False``);
* optionally applies classifier-free guidance (text models) or reconstruction guidance
  (:func:`reconstruction_guidance`);
* shows one progress bar over the whole plan and, given ``state_dir``, saves the frames produced so far and
  the plan position after every wave (atomically), so an interrupted run resumes to the same result.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

log = logging.getLogger(__name__)

NetFn = Callable[..., torch.Tensor]  # net(x (b,t,c,h,w), timesteps (b,), frame_idx (b,t), observed (b,t), context)
STATE_FILE = "state.safetensors"


@dataclass
class SamplerSettings:
    """How each stage is denoised.

    Attributes:
        sampler: a sampler of :func:`vidiff.diffusion.sample` (``ddpm``, ``ddim``, ``dpmpp_2m``, ``unipc``, ...).
        steps: denoising steps per stage.
        eta: DDIM stochasticity (0: deterministic).
        spacing: timestep spacing name, or None for the sampler's default.
        guidance: classifier-free guidance scale (used when a context is given; 1 = conditional only).
        recon_guidance: weight w_r of reconstruction guidance (Ho et al. 2022, eq. 7); 0 turns it off and uses
            the conditional model (clean observed frames marked observed), the default for FDM-style models.
        history_guidance: history guidance scale s for stages with observed frames (Song et al. 2025): the
            prediction is ``uncond + s * (cond - uncond)``, uncond with the observed frames dropped (shown as pure
            noise at the last timestep, not marked observed); 1 turns it off.
        extra: further keyword arguments for the sampler (e.g. ``threshold="dynamic"``).
    """

    sampler: str = "ddim"
    steps: int = 50
    eta: float = 0.0
    spacing: str | None = None
    guidance: float = 1.0
    recon_guidance: float = 0.0
    history_guidance: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Item:
    """One stage of one video inside a forward batch."""

    video: int
    stage: int
    observed: tuple[int, ...]
    latent: tuple[int, ...]

    @property
    def frames(self) -> list[int]:
        return [*self.observed, *self.latent]


def item_generator(seed: int, video: int, stage: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator seeded by ``(seed, video, stage)`` only (sha256 of the triple), independent of batching."""
    digest = hashlib.sha256(f"vidiff/{seed}/{video}/{stage}".encode()).digest()
    return torch.Generator(device=device).manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


def group_items(items: Sequence[Item], batch_budget: int) -> list[list[Item]]:
    """Split one wave's items into forward batches of equal frame count, at most ``batch_budget`` items each.

    Items keep their order inside a batch; batches are ordered by first appearance of their size.
    """
    if batch_budget < 1:
        raise ValueError(f"batch_budget: expected >= 1 (stage x video items per forward pass), got {batch_budget}")
    by_size: dict[int, list[Item]] = {}
    for item in items:
        by_size.setdefault(len(item.frames), []).append(item)
    return [group[i : i + batch_budget] for group in by_size.values() for i in range(0, len(group), batch_budget)]


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


def _core_accepts_generator_lists() -> bool:
    """Whether :func:`vidiff.diffusion.sample` takes a list of per-sample generators (diffusers' convention)."""
    try:
        from vidiff.diffusion.hooks import randn_like

        gens = [torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)]
        out = randn_like(torch.zeros(2, 3), gens)
        return bool(torch.equal(out[0], out[1]))
    except Exception:  # noqa: BLE001 (any failure means: no support for generator lists)
        return False


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


class StageRunner:
    """Denoises one forward batch of items; holds the model parts and the sampler settings.

    Args:
        net: ``net(x, timesteps, frame_idx, observed, context=None)`` on ``(b, t, c, h, w)``.
        schedule: the model's :class:`vidiff.diffusion.NoiseSchedule`.
        prediction: ``eps``, ``x0`` or ``v``.
        settings: sampler settings.
        sample_fn: the sampler entry point (default :func:`vidiff.diffusion.sample`).
    """

    def __init__(
        self,
        net: NetFn,
        schedule: Any,
        prediction: str,
        settings: SamplerSettings,
        sample_fn: Callable[..., torch.Tensor] | None = None,
    ) -> None:
        self.net, self.schedule, self.prediction, self.settings = net, schedule, prediction, settings
        if sample_fn is None:
            from vidiff.diffusion import sample as sample_fn

            self.per_sample_generators = _core_accepts_generator_lists()
        else:
            self.per_sample_generators = bool(getattr(sample_fn, "per_sample_generators", False))
        self.sample_fn = sample_fn
        self.evaluations = 0  # denoiser evaluations x items, the progress unit
        self.on_evaluation: Callable[[int], None] | None = None
        self._warned = False

    def _denoiser(self, frame_idx, observed, known, context, null_context, generators):
        s = self.settings
        if s.recon_guidance > 0:
            # the observed frames' own noise, drawn after the item's initial noise from the item's generator
            noise = torch.stack([torch.randn(known.shape[1:], generator=g, device=known.device) for g in generators])
            model_fn = reconstruction_guidance(
                self.net, self.schedule, self.prediction, frame_idx, observed, known, noise, s.recon_guidance
            )
        else:

            def model_fn(x, t, ctx):
                b = x.shape[0]
                reps = b // frame_idx.shape[0]  # CFG batches cond and uncond together
                return self.net(x, t, frame_idx.repeat(reps, 1), observed.repeat(reps, 1), ctx)

        if s.history_guidance != 1.0 and bool(observed.any()):
            if s.recon_guidance > 0:
                raise ValueError("history_guidance: not available together with recon_guidance")
            # the dropped history's noise, drawn after the item's initial noise from the item's generator
            noise = torch.stack([torch.randn(known.shape[1:], generator=g, device=known.device) for g in generators])
            model_fn = history_guided(self.net, frame_idx, observed, self.schedule.num_timesteps - 1,
                                      s.history_guidance, noise)
        if context is not None and null_context is not None and s.guidance != 1.0:
            from vidiff.diffusion.guidance import classifier_free_guidance

            denoiser = classifier_free_guidance(model_fn, context, null_context, s.guidance)
        else:

            def denoiser(x, t):
                return model_fn(x, t, context)

        def counted(x, t):
            self.evaluations += x.shape[0]
            if self.on_evaluation is not None:
                self.on_evaluation(x.shape[0])
            return denoiser(x, t)

        return counted

    @property
    def stochastic(self) -> bool:
        """Whether the sampler draws fresh noise at its steps (DDPM, DDIM with eta > 0)."""
        return self.settings.sampler == "ddpm" or (self.settings.sampler == "ddim" and self.settings.eta != 0)

    def _generator_arg(self, items: Sequence[Item], seed: int, generators: list[torch.Generator]) -> Any:
        """The ``generator`` passed to the sampler.

        One item: its own generator. Several: the list of per-item generators when the sampler accepts one
        (the core's ``randn_like`` takes a list, or ``sample_fn.per_sample_generators`` is true), so each item's step noise is its own and batching changes
        nothing. Deterministic samplers draw no step noise, so any generator will do. A stochastic sampler that
        takes a single generator gets one seeded by the batch's items: deterministic for a given batch
        budget, but then batched and sequential runs differ (a warning says so).
        """
        if len(generators) == 1:
            return generators[0]
        if self.per_sample_generators:
            return generators
        if not self.stochastic:
            return generators[0]
        if not self._warned:
            log.warning(
                "sampler %r draws step noise from one generator per batch: results depend on --batch-budget "
                "(use a deterministic sampler, or --batch-budget 1, for batch-invariant samples)",
                self.settings.sampler,
            )
            self._warned = True
        key = ",".join(f"{it.video}:{it.stage}" for it in items)
        digest = hashlib.sha256(f"vidiff/{seed}/{key}".encode()).digest()
        return torch.Generator(device=generators[0].device).manual_seed(int.from_bytes(digest[:8], "little") >> 1)

    def run(
        self,
        frames: torch.Tensor,
        items: Sequence[Item],
        seed: int,
        context: torch.Tensor | None = None,
        null_context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Denoise ``items`` (all of one frame count) in one sampler call.

        Args:
            frames: ``(n, T, c, h, w)`` the long videos so far; observed frames are read from it.
            items: the batch.
            seed: run seed.
            context: ``(n, L, d)`` per-video conditioning or None.
            null_context: ``(n or 1, L, d)`` unconditional embedding for classifier-free guidance, or None.

        Returns:
            ``(b, k, c, h, w)`` the items' frames (observed frames equal to the input), in ``items`` order.
        """
        device = frames.device
        videos = torch.tensor([it.video for it in items], device=device)
        idx = torch.tensor([it.frames for it in items], device=device)  # (b, k)
        observed = torch.tensor([[True] * len(it.observed) + [False] * len(it.latent) for it in items], device=device)
        known = frames[videos[:, None], idx]  # (b, k, c, h, w); latent slots hold zeros, masked out below
        shape = known.shape[1:]
        generators = [item_generator(seed, it.video, it.stage, device) for it in items]
        noise = torch.stack([torch.randn(shape, generator=g, device=device) for g in generators])
        known_mask = observed[:, :, None, None, None].expand_as(known)
        ctx = None if context is None else context[videos]
        null = None if null_context is None else null_context[videos] if len(null_context) > 1 else null_context
        denoiser = self._denoiser(idx, observed, known, ctx, null, generators)
        s = self.settings
        kwargs = dict(steps=s.steps, eta=s.eta, prediction=self.prediction, **s.extra)
        if s.spacing is not None:
            kwargs["spacing"] = s.spacing
        out = self.sample_fn(
            denoiser, noise, self.schedule, sampler=s.sampler, generator=self._generator_arg(items, seed, generators),
            known=known, known_mask=known_mask, known_noised=False, **kwargs,
        )
        return torch.where(known_mask, known, out.detach())
