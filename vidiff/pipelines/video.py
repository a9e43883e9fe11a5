"""The Python API: a trained model in, long videos out, one call::

    pipe = vidiff.load("vidiff/assets/shapes_reference.safetensors")
    video = pipe.generate(length=300, scheme="hierarchy-2", seed=0)   # (1, 300, c, h, w) in [-1, 1]
    vidiff.io.write_video("out.mp4", video[0], fps=8)

:meth:`VideoPipeline.generate` is :meth:`~VideoPipeline.plan` (a scheme's stages or per-frame schedule),
:meth:`~VideoPipeline.conditioning` (text contexts) and :meth:`~VideoPipeline.run` (the executors of
:mod:`vidiff.pipelines.long_video` / :mod:`vidiff.pipelines.level_video`); ``vidiff sample`` calls the same three
after checking its options. Arguments are keyword-only; errors name them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from vidiff.arguments import check_int
from vidiff.diffusion import check_sampler
from vidiff.pipelines.inputs import Conditioning, GivenFrames, ResumeOptions, RunOptions
from vidiff.pipelines.load import load_sampling_model
from vidiff.pipelines.model import VideoModel
from vidiff.pipelines.speed import Speed, accelerate
from vidiff.pipelines.stages import DEFAULT_SPACING, DEFAULT_STEPS, SamplerSettings


def is_per_frame(scheme: str) -> bool:
    """Whether ``scheme`` is a per-frame schedule (fifo, df-*, rolling) or a combined one
    (``hierarchy-2+fifo``: keyframes by stages, then a per-frame fill) rather than a list of stages."""
    from vidiff.schemes.keyframes import is_combined
    from vidiff.schemes.levels import LEVEL_SCHEMES

    return scheme.strip().lower() in LEVEL_SCHEMES or is_combined(scheme)


def make_plan(
    scheme: str,
    *,
    length: int,
    max_frames: int,
    num_timesteps: int,
    step_size: int | None = None,
    given: Sequence[int] = (),
    steps: int | None = DEFAULT_STEPS,
    spacing: str | None = None,
    partitions: int | None = None,
    lookahead: bool = False,
    history_level: int = -1,
    keyframe_spacing: int | None = None,
) -> Any:
    """The plan of ``scheme``: a list of stages (:func:`vidiff.schemes.plan`) or, for a per-frame scheme, a
    :class:`vidiff.schemes.levels.LevelPlan` (``steps`` levels per frame; fifo: ``partitions`` x K levels, default
    ``steps // K`` partitions; ``spacing`` default ``trailing``), or for a combined scheme
    (``hierarchy-2+fifo``) a :class:`vidiff.schemes.keyframes.KeyframePlan` (keyframes every
    ``keyframe_spacing`` frames, ``steps`` sampler steps per keyframe stage; the fill as a per-frame scheme
    with a window of K - 1)."""
    if not is_per_frame(scheme):
        from vidiff.schemes import plan

        return plan(scheme, length, max_frames, step_size, given=list(given))
    from vidiff.schemes.keyframes import is_combined, keyframe_plan, split_name
    from vidiff.schemes.levels import level_plan

    name, spacing = scheme.strip().lower(), spacing or DEFAULT_SPACING
    levels = steps or DEFAULT_STEPS  # levels per frame, or sampler steps per keyframe stage
    if is_combined(name):
        if partitions is None:
            partitions = max(1, levels // max(max_frames - 1, 1))  # the fill's window is K - 1
        fill_steps = None if split_name(name)[1] == "fifo" else steps
        return keyframe_plan(name, length, max_frames, fill_steps, num_timesteps,
                             keyframe_spacing=keyframe_spacing, stage_steps=levels, chunk=step_size,
                             partitions=partitions, lookahead=lookahead, given=list(given),
                             history_level=history_level, spacing=spacing)
    if partitions is None:
        partitions = max(1, levels // max_frames)
    return level_plan(name, length, max_frames, None if name == "fifo" else steps, num_timesteps, chunk=step_size,
                      partitions=partitions, lookahead=lookahead, given=list(given), history_level=history_level,
                      spacing=spacing)


class VideoPipeline:
    """Long videos from a :class:`VideoModel` with any scheme, sampler and conditioning.

    Args:
        model: the model parts (:func:`load_sampling_model`).
    """

    def __init__(self, model: VideoModel) -> None:
        self.model = model

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike, device: str | torch.device = "cpu", speed: Speed | None = None
    ) -> VideoPipeline:
        """The pipeline of a ``vidiff fit`` checkpoint or a ``vidiff export`` weights file (EMA weights), its
        net behind ``speed``'s levers (default: inference mode only; :mod:`vidiff.pipelines.speed`)."""
        return cls(accelerate(load_sampling_model(path, device), speed))

    # ------------------------------------------------------------------------------------------------- pieces
    def plan(self, scheme: str, *, length: int, max_frames: int | None = None, **options: Any) -> Any:
        """:func:`make_plan` with the model's K and number of timesteps."""
        return make_plan(scheme, length=length, max_frames=max_frames or self.model.max_frames,
                         num_timesteps=self.model.schedule.num_timesteps, **options)

    @torch.no_grad()
    def conditioning(self, prompt: str | None, negative_prompt: str | None, num_videos: int) -> Conditioning:
        """For a text model, ``context`` ``(n, L, d)`` (the prompt, or the null embedding) and ``uncond``
        ``(1, L, d)`` (the negative prompt, or the null embedding); both None for a model without a
        text encoder."""
        enc = self.model.text_encoder
        if enc is None:
            for name, value in (("prompt", prompt), ("negative_prompt", negative_prompt)):
                if value is not None:
                    raise ValueError(f"{name}: this model has no text encoder")
            return Conditioning()
        context = enc.encode([prompt] * num_videos) if prompt else enc.null_embedding(num_videos)
        null = enc.encode([negative_prompt]) if negative_prompt else enc.null_embedding(1)
        return Conditioning(context, null)

    def run(
        self,
        plan: Any,
        *,
        length: int,
        num_videos: int = 1,
        seed: int = 0,
        settings: SamplerSettings | None = None,
        given: GivenFrames | None = None,
        conditioning: Conditioning | None = None,
        resume: ResumeOptions | None = None,
        options: RunOptions | None = None,
        max_frames: int | None = None,
        history_guidance_level: int | None = None,
    ) -> torch.Tensor:
        """Run a plan of :meth:`plan`: ``given`` frames (pixels in [-1, 1]) are encoded, the executor
        fills the rest, the videos are decoded; returns ``(n, T, c, h, w)`` in [-1, 1]. ``resume`` applies to
        every plan (stage, per-frame: a wave is a global step, combined), ``history_guidance_level`` to the
        per-frame ones."""
        from vidiff.pipelines.keyframe_video import sample_keyframe_videos
        from vidiff.pipelines.level_video import sample_level_videos
        from vidiff.pipelines.long_video import sample_long_videos
        from vidiff.schemes.keyframes import KeyframePlan

        model, settings = self.model, settings or SamplerSettings()
        options, conditioning = options or RunOptions(), conditioning or Conditioning()
        if given is not None:
            with torch.no_grad():
                pixels = given.frames.to(model.device)
                given = GivenFrames(model.encode(pixels, chunk_size=options.decode_chunk), given.indices)
        prefix = None if given is None else given.frames
        if isinstance(plan, KeyframePlan):
            videos = sample_keyframe_videos(
                model, plan, num_videos, seed, settings=settings, given=prefix, conditioning=conditioning,
                history_guidance_level=history_guidance_level, resume=resume, options=options,
            )
        elif isinstance(plan, list):
            videos = sample_long_videos(
                model, plan, length=length, num_videos=num_videos, seed=seed, settings=settings, given=given,
                conditioning=conditioning, resume=resume, options=options, max_frames=max_frames,
            )
        else:
            videos = sample_level_videos(
                model, plan, num_videos, seed, settings=settings, given=prefix, conditioning=conditioning,
                history_guidance_level=history_guidance_level, resume=resume, options=options,
            )
        return videos.clamp(-1, 1)

    # --------------------------------------------------------------------------------------------- one call
    def generate(
        self,
        *,
        length: int,
        scheme: str = "hierarchy-2",
        seed: int = 0,
        num_videos: int = 1,
        given: torch.Tensor | None = None,
        given_indices: Sequence[int] | None = None,
        prompt: str | None = None,
        negative_prompt: str | None = None,
        guidance: float = 1.0,
        sampler: str = "ddim",
        steps: int = 50,
        eta: float = 0.0,
        spacing: str = DEFAULT_SPACING,
        max_frames: int | None = None,
        step_size: int | None = None,
        history_guidance: float = 1.0,
        history_guidance_level: int | None = None,
        recon_guidance: float = 0.0,
        partitions: int | None = None,
        lookahead: bool = False,
        history_level: int = -1,
        keyframe_spacing: int | None = None,
        batch_budget: int = 16,
        progress: bool = False,
        decode_chunk: int = 16,
    ) -> torch.Tensor:
        """Sample ``num_videos`` videos of ``length`` frames.

        Args:
            length: T, frames per video (at least K).
            scheme: a long-video scheme (``hierarchy-2``, ``autoregressive``, ``interpolate``, ...; see
                ``vidiff scheme``), a per-frame one (``fifo``, ``df-pyramid``, ``df-autoregressive``,
                ``rolling``) or a combination ``<stage scheme>+<per-frame scheme>`` (``hierarchy-2+fifo``:
                keyframes, then a per-frame fill).
            seed: video i of a call depends on the seed and i only (not on ``num_videos`` or ``batch_budget``).
            num_videos: n.
            given: ``(1 or n, g, c, h, w)`` frames in [-1, 1] at the model's image size, or None.
            given_indices: their g positions (default ``0 .. g-1``: continue a clip); per-frame schemes take a prefix.
            prompt, negative_prompt, guidance: text conditioning and classifier-free guidance scale (text models).
            sampler, steps, eta, spacing: the sampler of :func:`vidiff.diffusion.sample` and its settings, per stage
                (per-frame schemes: DDIM, ``steps`` levels per frame).
            max_frames, step_size: K (default the model's) and frames generated per stage (default K // 2).
            history_guidance, history_guidance_level, recon_guidance: guidance by the observed frames
                (docs/sampling.md).
            partitions, lookahead, history_level: per-frame scheme options (fifo; history shown at a level).
            keyframe_spacing: combined schemes (``hierarchy-2+fifo``): frames between keyframes (default K).
            batch_budget: most stage x video items per forward pass. progress: show a progress bar.
            decode_chunk: frames per autoencoder call (latent models).

        Returns:
            ``(n, T, c, h, w)`` videos in [-1, 1].
        """
        model = self.model
        check_int("length", length)
        for name, value in (("num_videos", num_videos), ("steps", steps), ("batch_budget", batch_budget),
                            ("decode_chunk", decode_chunk)):
            check_int(name, value)
        check_sampler(sampler, spacing)
        if eta != 0 and sampler != "ddim":
            raise ValueError(f"eta: only applies to sampler='ddim', got eta={eta} with sampler={sampler!r}")
        k = max_frames or model.max_frames
        if k is None:
            raise ValueError("max_frames: the model does not record K; pass max_frames")
        if length < k:
            raise ValueError(f"length: expected at least max_frames={k} frames, got {length}")
        given_indices = self._check_given(given, given_indices, length, num_videos)
        per_frame = is_per_frame(scheme)
        if per_frame and sampler != "ddim":
            raise ValueError(f"sampler: per-frame schemes step each frame with DDIM; got {sampler!r}")
        if per_frame and recon_guidance:
            raise ValueError("recon_guidance: not available with per-frame schemes (use history_guidance)")
        if not per_frame and history_guidance_level is not None:
            raise ValueError("history_guidance_level: only per-frame schemes noise the history to a level")
        try:
            plan = self.plan(scheme, length=length, max_frames=k, step_size=step_size, given=given_indices,
                             steps=steps, spacing=spacing, partitions=partitions, lookahead=lookahead,
                             history_level=history_level, keyframe_spacing=keyframe_spacing)
        except ValueError as err:
            raise ValueError(f"scheme: {scheme!r}: {err}") from err
        if isinstance(plan, list) and not plan:
            raise ValueError("given_indices: every frame is given; nothing to sample")
        settings = SamplerSettings(sampler, steps, eta, spacing, guidance, recon_guidance,
                                   history_guidance=history_guidance)
        return self.run(plan, length=length, num_videos=num_videos, seed=seed, settings=settings,
                        given=None if given is None else GivenFrames(given, given_indices),
                        conditioning=self.conditioning(prompt, negative_prompt, num_videos), max_frames=k,
                        history_guidance_level=history_guidance_level,
                        options=RunOptions(batch_budget, progress, decode_chunk))

    def _check_given(
        self, given: torch.Tensor | None, indices: Sequence[int] | None, length: int, num_videos: int
    ) -> list[int]:
        if given is None:
            if indices:
                raise ValueError("given_indices: needs given frames")
            return []
        shape = tuple(self.model.image_shape)
        if not isinstance(given, torch.Tensor) or given.ndim != 5 or tuple(given.shape[2:]) != shape:
            got = tuple(given.shape) if isinstance(given, torch.Tensor) else type(given).__name__
            raise ValueError(f"given: expected a (1 or num_videos, g, {', '.join(map(str, shape))}) tensor, got {got}")
        if given.shape[0] not in (1, num_videos):
            raise ValueError(f"given: batch must be 1 or num_videos={num_videos}, got {given.shape[0]}")
        g = given.shape[1]
        indices = list(range(g)) if indices is None else [int(i) for i in indices]
        if len(indices) != g:
            raise ValueError(f"given_indices: {len(indices)} indices for {g} given frames")
        if len(set(indices)) != g or not all(0 <= i < length for i in indices):
            raise ValueError(f"given_indices: expected distinct positions in [0, length={length}), got {indices}")
        return indices


def load(
    path: str | os.PathLike, device: str | torch.device = "cpu", speed: Speed | None = None
) -> VideoPipeline:
    """A :class:`VideoPipeline` from a ``vidiff fit`` checkpoint or a ``vidiff export`` weights file; ``speed``:
    the sampling levers (e.g. ``Speed(precision="bf16")``; default inference mode only)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path, got {type(path).__name__}")
    try:
        return VideoPipeline.from_pretrained(path, device, speed)
    except (ValueError, FileNotFoundError) as err:  # name this function's argument
        message = str(err)
        if message.startswith("ckpt: "):
            raise type(err)("path: " + message.removeprefix("ckpt: ")) from err
        raise
