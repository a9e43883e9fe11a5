"""The executor of combined plans (:class:`vidiff.schemes.keyframes.KeyframePlan`, ``hierarchy-2+fifo``):
keyframes by stages, then the per-frame fill.

Phase 1 runs the keyframe stages wave by wave with :class:`vidiff.pipelines.stages.StageRunner` (item
``(video v, stage s)`` draws its noise from ``(seed, v, s)``, as in
:func:`vidiff.pipelines.long_video.sample_long_videos`, so batching changes nothing); phase 2 runs the fill
with :func:`vidiff.pipelines.level_video.run_level_plan`, the prefix and the keyframes given. Both phases save
their state in one ``state_dir`` (:mod:`vidiff.pipelines.level_state`; ``kind`` tells them apart), so an
interrupted run resumes in either phase to the videos of an uninterrupted one.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from vidiff.pipelines import level_state
from vidiff.pipelines.inputs import Conditioning, ResumeOptions, RunOptions
from vidiff.pipelines.level_video import sample_level_videos
from vidiff.pipelines.long_video import Interrupted
from vidiff.pipelines.stages import Item, SamplerSettings, StageRunner, group_items

log = logging.getLogger(__name__)


def _keyframes(
    model: Any, plan: Any, num_videos: int, seed: int, settings: SamplerSettings, given: torch.Tensor | None,
    context: torch.Tensor | None, null_context: torch.Tensor | None, batch_budget: int, progress: bool,
    state_path: Path | None, resume: bool, stop_after_wave: int | None,
) -> torch.Tensor:
    """Phase 1: ``(n, T, ...)`` with the prefix and the keyframes filled (other frames zero)."""
    from tqdm.auto import tqdm

    from vidiff.schemes.stage import batches

    device, stages = model.device, list(plan.stages)
    frames = torch.zeros(num_videos, plan.length, *model.frame_shape, device=device)
    if given is not None:
        given = given.to(device=device, dtype=frames.dtype)
        frames[:, list(plan.prefix)] = given.expand(num_videos, *given.shape[1:])
    waves = batches(stages)
    sig = level_state.signature(
        seed=seed, num_videos=num_videos, settings=asdict(settings), shape=tuple(model.frame_shape),
        stages=[[s.observed, s.latent] for s in stages], given=level_state.digest(given),
        context=level_state.digest(context), null=level_state.digest(null_context),
    )
    start = 0
    if state_path is not None and resume:
        loaded = level_state.load_state(state_path, sig, 0, level_state.KEYFRAME_KIND)
        if loaded is not None:
            frames, start = loaded.x.to(device=device, dtype=frames.dtype), loaded.next_step
            log.info("resuming %s at keyframe wave %d of %d", state_path, start, len(waves))
    runner = StageRunner(model.net, model.schedule, model.prediction, settings)
    bar = tqdm(total=len(waves), initial=start, disable=not progress, unit="wave", desc="keyframes",
               dynamic_ncols=True)
    try:
        with torch.no_grad():
            for w in range(start, len(waves)):
                items = [Item(v, j, tuple(stages[j].observed), tuple(stages[j].latent))
                         for j in waves[w] for v in range(num_videos)]
                for batch in group_items(items, batch_budget):
                    for it, clip in zip(batch, runner.run(frames, batch, seed, context, null_context)):
                        frames[it.video, list(it.latent)] = clip[len(it.observed):]
                bar.update(1)
                if state_path is not None:
                    level_state.save_state(state_path, level_state.LevelState(frames, w + 1, 0, []), sig,
                                           level_state.KEYFRAME_KIND)
                if stop_after_wave is not None and w == stop_after_wave:
                    raise Interrupted(f"stopped after keyframe wave {w} of {len(waves)} "
                                      f"(state in {state_path})")
    finally:
        bar.close()
    return frames


def sample_keyframe_videos(
    model: Any,
    plan: Any,
    num_videos: int = 1,
    seed: int = 0,
    *,
    settings: SamplerSettings | None = None,
    given: torch.Tensor | None = None,
    conditioning: Conditioning | None = None,
    history_guidance_level: int | None = None,
    resume: ResumeOptions | None = None,
    options: RunOptions | None = None,
    decode: bool = True,
) -> torch.Tensor:
    """Videos ``(n, T, c, h, w)`` from a combined plan (module docstring).

    Args:
        model: a :class:`vidiff.pipelines.VideoModel`. plan: a :class:`vidiff.schemes.keyframes.KeyframePlan`.
        num_videos, seed: as :func:`vidiff.pipelines.long_video.sample_long_videos`.
        settings: the keyframe stages' sampler (any sampler of the core); the fill steps with DDIM and its
            ``eta``, ``guidance`` and ``history_guidance``.
        given: ``(n or 1, len(plan.prefix), ...)`` the prefix in model space, or None.
        conditioning: text conditioning, or None.
        history_guidance_level: the fill's uncond history level (:func:`run_level_plan`).
        resume: save / continue the run's state (either phase); ``stop_after_wave`` counts the keyframe waves
            first, then the fill's global steps.
        options, decode: as for the other executors.
    """
    settings, conditioning = settings or SamplerSettings(), conditioning or Conditioning()
    resume, options = resume or ResumeOptions(), options or RunOptions(progress=True)
    waves, stop_after_wave = plan.waves, resume.stop_after_wave
    state_path = None if resume.state_dir is None else Path(resume.state_dir)
    in_fill = resume.resume and state_path is not None and level_state.saved_kind(state_path) == level_state.KIND
    if in_fill:  # the keyframes are done: they sit, clean, in the fill's saved state
        frames = level_state.saved_frames(state_path).to(model.device)
    else:
        stop = stop_after_wave if stop_after_wave is not None and stop_after_wave < waves else None
        frames = _keyframes(model, plan, num_videos, seed, settings, given, conditioning.context,
                            conditioning.uncond, options.batch_budget, options.progress, state_path, resume.resume,
                            stop)
    stop = None if stop_after_wave is None or stop_after_wave < waves else stop_after_wave - waves
    return sample_level_videos(
        model, plan.fill, num_videos, seed, settings=settings, given=frames[:, list(plan.fill.given)],
        conditioning=conditioning, history_guidance_level=history_guidance_level,
        resume=ResumeOptions(resume.state_dir, in_fill, stop), options=options, decode=decode, waves_before=waves,
    )
