"""Long-video sampling: a model and a plan in, whole videos out (batched, resumable, with progress).

:func:`sample_long_videos` runs a plan (:func:`vidiff.schemes.plan`) wave by wave with
:class:`vidiff.pipelines.stages.StageRunner`; after every wave the frames so far and the plan position are saved
atomically (``state.safetensors`` + a readable ``state.json``), so an interrupted run resumes to the same videos::

    model = load_sampling_model("last.ckpt")
    stages = vidiff.schemes.plan("hierarchy-2", length=300, max_frames=20, step_size=None)
    videos = sample_long_videos(model, stages, length=300, num_videos=4, seed=0)   # (4, 300, c, h, w)

Its inputs are the dataclasses of :mod:`vidiff.pipelines.inputs` (given frames, conditioning, resume
options, run options); every argument after the plan is keyword-only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from vidiff.arguments import check_int
from vidiff.pipelines import level_state
from vidiff.pipelines.inputs import Conditioning, GivenFrames, ResumeOptions, RunOptions
from vidiff.pipelines.level_state import LevelState
from vidiff.pipelines.model import VideoModel
from vidiff.pipelines.stages import Item, SamplerSettings, StageRunner, group_items

log = logging.getLogger(__name__)


class Interrupted(RuntimeError):
    """Raised by ``stop_after_wave`` (tests and ``--stop-after-wave``): the state on disk is resumable."""


def _stage_observed(stage: Any, available: Sequence[int], frames: torch.Tensor, max_frames: int) -> tuple[int, ...]:
    """The observed frames a stage runs with for one video (``frames``: ``(T, c, h, w)``).

    Fixed stages use their ``observed``; adaptive ones are resolved by :func:`vidiff.schemes.resolve_stage`
    (greedy max-min distance of :func:`vidiff.schemes.frame_embedding`) among the ``available`` frames: given
    plus produced by earlier stages in plan order, so the choice does not depend on batching.
    """
    if not getattr(stage, "adaptive", False):
        return tuple(stage.observed)
    from vidiff.schemes import frame_embedding, resolve_stage

    embeddings = {f: frame_embedding(frames[f]) for f in available}
    return tuple(resolve_stage(stage, available, embeddings, max_frames).observed)


def sample_long_videos(
    model: VideoModel,
    stages: Sequence[Any],
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
    sample_fn: Callable[..., torch.Tensor] | None = None,
    decode: bool = True,
) -> torch.Tensor:
    """Run a plan for ``num_videos`` videos of ``length`` frames.

    Args:
        model: the model parts.
        stages: the plan (stages with ``observed``, ``latent`` and optionally ``adaptive``).
        length: T, frames per video.
        num_videos: n.
        seed: the run's seed; item (video v, stage s) draws its noise from a generator seeded by (seed, v, s).
        settings: sampler settings (default DDIM, 50 steps).
        given: frames in model space supplied by the user, or None.
        conditioning: ``(n, L, d)`` text context and ``(1 or n, L, d)`` uncond for guidance, or None.
        resume: where to save the state after every wave, and whether to continue it (default: not saved).
        options: batch budget, progress bar, decoder chunk (default :class:`RunOptions`).
        max_frames: K, the most frames a stage may hold (adaptive stages fill up to it); default the
            model's ``max_frames``, else the largest stage of the plan.
        sample_fn: sampler entry point (default :func:`vidiff.diffusion.sample`).
        decode: decode latents with the model's autoencoder at the end.

    Returns:
        ``(n, T, c, h, w)`` videos: pixels in [-1, 1] (or model-space latents with ``decode=False``).
    """
    from vidiff.schemes.stage import batches, check_plan

    settings, options = settings or SamplerSettings(), options or RunOptions()
    conditioning, resume = conditioning or Conditioning(), resume or ResumeOptions()
    check_int("num_videos", num_videos)
    given_idx = given.check(num_videos) if given is not None else []
    if not stages:
        raise ValueError("stages: the plan is empty (every frame given?); nothing to sample")
    max_frames = max_frames or model.max_frames or max(len(s.observed) + len(s.latent) for s in stages)
    check_plan(stages, length, max_frames, given_idx)
    frames = initial_frames(model, length=length, num_videos=num_videos, given=given)
    signature = plan_signature(stages, length=length, num_videos=num_videos, seed=seed, settings=settings,
                               given=given, conditioning=conditioning)
    waves = batches(stages)
    frames, start = resume_state(resume, signature=signature, frames=frames, waves=len(waves))
    runner = StageRunner(model.net, model.schedule, model.prediction, settings, sample_fn)
    done_before = sum(len(waves[w]) for w in range(start)) * num_videos * settings.steps
    bar = tqdm(
        total=len(stages) * num_videos * settings.steps, initial=done_before, disable=not options.progress,
        unit="eval", desc="sampling", dynamic_ncols=True,
    )
    runner.on_evaluation = bar.update
    available = available_frames(stages, given_idx)
    state_path = Path(resume.state_dir) if resume.state_dir is not None else None
    try:
        with torch.no_grad():
            for w in range(start, len(waves)):
                items = [
                    Item(v, j, _stage_observed(stages[j], available[j], frames[v], max_frames),
                         tuple(stages[j].latent))
                    for j in waves[w]
                    for v in range(num_videos)
                ]
                run_items(runner, frames, items, seed=seed, conditioning=conditioning,
                          batch_budget=options.batch_budget)
                bar.set_postfix(wave=f"{w + 1}/{len(waves)}")
                if state_path is not None:
                    level_state.save_state(state_path, LevelState(frames, w + 1, 0, []), signature, level_state.STAGE_KIND)
                if resume.stop_after_wave is not None and w == resume.stop_after_wave:
                    raise Interrupted(f"stopped after wave {w} of {len(waves)} (state in {state_path})")
    finally:
        bar.close()
    return model.decode(frames, chunk_size=options.decode_chunk) if decode else frames


def initial_frames(
    model: VideoModel, *, length: int, num_videos: int, given: GivenFrames | None
) -> torch.Tensor:
    """``(n, T, *frame_shape)`` zeros on the model's device with the given frames in place."""
    frames = torch.zeros(num_videos, length, *model.frame_shape, device=model.device)
    if given is not None:
        g = given.frames
        g = g.to(device=frames.device, dtype=frames.dtype)
        frames[:, list(given.indices)] = g.expand(num_videos, *g.shape[1:])
    return frames


def available_frames(stages: Sequence[Any], given_idx: Sequence[int]) -> list[list[int]]:
    """Per stage, the frames known before it runs in plan order: given plus produced by earlier stages."""
    available, seen = [], set(given_idx)
    for stage in stages:
        available.append(sorted(seen))
        seen |= set(stage.latent)
    return available


def plan_signature(
    stages: Sequence[Any], *, length: int, num_videos: int, seed: int, settings: SamplerSettings,
    given: GivenFrames | None, conditioning: Conditioning,
) -> str:
    """Everything that decides the videos, as the json text a saved state must match to be resumed."""
    return level_state.signature(
        seed=seed, length=length, num_videos=num_videos, settings=asdict(settings),
        stages=[[list(s.observed), list(s.latent), bool(getattr(s, "adaptive", False))] for s in stages],
        given_idx=[int(i) for i in given.indices] if given is not None else [],
        given=level_state.digest(given.frames if given is not None else None),
        context=level_state.digest(conditioning.context), null=level_state.digest(conditioning.uncond),
    )


def resume_state(
    resume: ResumeOptions, *, signature: str, frames: torch.Tensor, waves: int
) -> tuple[torch.Tensor, int]:
    """``(frames, first wave to run)``: the saved state when ``resume`` asks for it and one exists, else
    ``(frames, 0)``."""
    if resume.state_dir is None or not resume.resume:
        return frames, 0
    loaded = level_state.load_state(Path(resume.state_dir), signature, 0, level_state.STAGE_KIND)
    if loaded is None:
        return frames, 0
    log.info("resuming %s at wave %d of %d", resume.state_dir, loaded.next_step, waves)
    return loaded.x.to(frames.device), loaded.next_step


def run_items(
    runner: StageRunner,
    frames: torch.Tensor,
    items: Sequence[Item],
    *,
    seed: int,
    conditioning: Conditioning,
    batch_budget: int,
) -> None:
    """Denoise ``items`` in forward batches of at most ``batch_budget`` and write their latent frames into
    ``frames`` ``(n, T, ...)``."""
    for batch in group_items(list(items), batch_budget):
        out = runner.run(frames, batch, seed, conditioning.context, conditioning.uncond)
        for it, video in zip(batch, out):
            frames[it.video, list(it.latent)] = video[len(it.observed):]


def fill_frames(
    model: VideoModel,
    video: torch.Tensor,
    frame_idx: torch.Tensor,
    observed: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    seed: int = 0,
    settings: SamplerSettings | None = None,
    conditioning: Conditioning | None = None,
    batch_budget: int = 16,
) -> torch.Tensor:
    """Generate the latent frames of clips, each clip one stage of one video (validation and predict samples).

    Clip ``v`` becomes item (video v, stage 0) of :class:`StageRunner`: its valid observed frames are given, its
    valid latent frames generated, at their positions ``frame_idx`` of video v; so a clip whose frames are a
    plan's only stage gives exactly what :func:`sample_long_videos` gives for that plan and seed.

    Args:
        model: the model parts.
        video: ``(b, k, c, h, w)`` pixels in [-1, 1] (read where observed).
        frame_idx: ``(b, k)`` distinct positions per clip (among valid slots).
        observed: ``(b, k)`` bool. valid: ``(b, k)`` bool, or None (all valid); invalid slots are kept as given.
        seed, settings, conditioning: as :func:`sample_long_videos`.
        batch_budget: as :class:`RunOptions`.

    Returns:
        ``(b, k, c, h, w)`` pixels in [-1, 1]: observed (and invalid) frames reproduced, latent ones sampled.
    """
    settings = settings or SamplerSettings()
    observed = observed.bool()
    valid = torch.ones_like(observed) if valid is None else valid.bool()
    with torch.no_grad():
        known = model.encode(video.to(model.device))
        b = known.shape[0]
        frames = torch.zeros(b, int(frame_idx.max()) + 1, *known.shape[2:], device=known.device, dtype=known.dtype)
        items, slots = [], []
        for v in range(b):
            obs, lat = (valid[v] & observed[v]).nonzero().flatten(), (valid[v] & ~observed[v]).nonzero().flatten()
            frames[v, frame_idx[v, obs]] = known[v, obs]
            items.append(Item(v, 0, tuple(frame_idx[v, obs].tolist()), tuple(frame_idx[v, lat].tolist())))
            slots.append(lat)
        runner = StageRunner(model.net, model.schedule, model.prediction, settings)
        conditioning = conditioning or Conditioning()
        out = known.clone()
        for batch in group_items([it for it in items if it.latent], batch_budget):
            clips = runner.run(frames, batch, seed, conditioning.context, conditioning.uncond)
            for it, clip in zip(batch, clips):
                out[it.video, slots[it.video]] = clip[len(it.observed):]
        return model.decode(out).float().clamp(-1, 1)
