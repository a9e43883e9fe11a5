"""The stage executor: denoises batches of stages of a long-video plan with any sampler of the diffusion core.

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
* conditions the network through :func:`vidiff.pipelines.denoiser.conditioned_denoiser` (classifier-free,
  reconstruction or history guidance as the settings say).

:func:`vidiff.pipelines.long_video.sample_long_videos` runs a whole plan wave by wave with it (progress, resume).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from vidiff.arguments import check_int
from vidiff.pipelines.denoiser import conditioned_denoiser, per_video
from vidiff.pipelines.model import NetFn

log = logging.getLogger(__name__)


#: The generation layer's timestep spacing: ``trailing`` starts every stage at the last training timestep, where
#: the initial noise belongs. DDIM's ``leading`` (diffusers' default, kept by :func:`vidiff.diffusion.sample`)
#: starts at ``T - T / steps`` (t = 800 for 5 steps) from pure noise, and a 64-frame autoregressive video of the
#: reference model kept its objects in 10% of its frames instead of 81% (docs/benchmarks.md, "Timestep spacing").
DEFAULT_SPACING = "trailing"
#: Sampling steps (per stage; per frame for per-frame schemes) when a front door is not told: every command's
#: ``--steps`` and validation samples (``samples.steps``).
DEFAULT_STEPS = 50


@dataclass
class SamplerSettings:
    """How each stage is denoised.

    Attributes:
        sampler: a sampler of :func:`vidiff.diffusion.sample` (``ddpm``, ``ddim``, ``dpmpp_2m``, ``unipc``, ...).
        steps: denoising steps per stage.
        eta: DDIM stochasticity (0: deterministic).
        spacing: timestep spacing name (default :data:`DEFAULT_SPACING`), or None for the core sampler's own
            default (diffusers': ``leading`` for DDIM).
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
    spacing: str | None = DEFAULT_SPACING
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
    check_int("batch_budget", batch_budget, note=" (stage x video items per forward pass)")
    by_size: dict[int, list[Item]] = {}
    for item in items:
        by_size.setdefault(len(item.frames), []).append(item)
    return [group[i : i + batch_budget] for group in by_size.values() for i in range(0, len(group), batch_budget)]


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
        if sample_fn is None:  # the core takes a list of per-sample generators (diffusers' convention)
            from vidiff.diffusion import sample as sample_fn

            self.per_sample_generators = True
        else:
            self.per_sample_generators = bool(getattr(sample_fn, "per_sample_generators", False))
        self.sample_fn = sample_fn
        self.evaluations = 0  # denoiser evaluations x items, the progress unit
        self.on_evaluation: Callable[[int], None] | None = None
        self._warned = False

    def _denoiser(self, frame_idx, observed, known, context, null_context, generators):
        s = self.settings

        def item_noise() -> torch.Tensor:  # drawn after the item's initial noise from the item's generator
            return torch.stack([torch.randn(known.shape[1:], generator=g, device=known.device) for g in generators])

        recon_noise = item_noise() if s.recon_guidance > 0 else None  # the observed frames' own noise
        history = s.recon_guidance == 0 and s.history_guidance != 1.0 and bool(observed.any())
        denoiser = conditioned_denoiser(
            self.net, frame_idx, observed, context=context, null_context=null_context, guidance=s.guidance,
            schedule=self.schedule, prediction=self.prediction, known=known, recon_guidance=s.recon_guidance,
            recon_noise=recon_noise, history_guidance=s.history_guidance,
            history_noise=item_noise() if history else None,  # the dropped history's noise
        )

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
        ctx, null = per_video(context, null_context, videos)
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
