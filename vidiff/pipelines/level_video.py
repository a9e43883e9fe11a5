"""The executor of per-frame schedules (:class:`vidiff.schemes.levels.LevelPlan`): long videos, one DDIM step
per frame at a time.

The state is the whole video ``x`` ``(n, T, c, h, w)``: every generated frame starts as pure noise at the top
of its ladder, given frames are clean. Global step ``g`` evaluates the network once per window and video on the
window's frames at their row-``g`` levels, then moves each window's ``update`` frames to their row-``g + 1``
levels with :func:`vidiff.diffusion.per_frame.ddim_level_step`. All windows of a step read the state before the
step (FIFO's partitions run in parallel), so they are batched: items of equal frame count, at most
``batch_budget`` a forward pass.

Clean frames in a window (given, or finished) are the history: shown clean and marked observed, or, with
``plan.history_level`` a timestep, noised to it (Diffusion Forcing's noisy history) with noise fixed per frame.
**History guidance** (``history_guidance = s != 1``; Song et al. 2025, "History-guided video diffusion"): a
window that holds history frames is evaluated twice, with the history as above (cond) and with it noised to
``history_guidance_level`` (uncond: the last training timestep, i.e. history dropped, is *vanilla* history
guidance; a lower level is *fractional* history guidance), and the prediction is
``uncond + s * (cond - uncond)``.

Randomness: frame ``f`` of video ``v`` draws its initial noise from a generator seeded by ``(seed, v, f)``, its
history noise likewise; DDIM's step noise (``eta > 0``) comes from one generator per video, drawn in plan order.
So a run is deterministic for a seed and does not depend on ``batch_budget`` or ``num_videos``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import logging
import os
import time
from pathlib import Path

import torch

from vidiff.diffusion.per_frame import CLEAN, ddim_level_step
from vidiff.pipelines import level_state
from vidiff.pipelines.denoiser import conditioned_denoiser, per_video
from vidiff.pipelines.inputs import Conditioning, ResumeOptions, RunOptions
from vidiff.pipelines.long_video import Interrupted
from vidiff.pipelines.stages import SamplerSettings, item_generator

log = logging.getLogger(__name__)

#: ``denoiser(x (b, k, ...), t (b, k) long, clean (b, k) bool, frame_idx (b, k) long, videos (b,) long) -> pred``.
WindowDenoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def net_denoiser(
    net: Callable[..., torch.Tensor],
    context: torch.Tensor | None = None,
    null_context: torch.Tensor | None = None,
    guidance: float = 1.0,
) -> WindowDenoiser:
    """A :data:`WindowDenoiser` from a vidiff network ``net(x, t (b, k), frame_idx, observed, context)``.

    Clean frames are marked observed (the network sees them at t = 0, as in training); ``context`` ``(n, L, d)``
    is indexed by video; with ``null_context`` and ``guidance != 1`` classifier-free guidance is applied.
    """

    def denoiser(x, t, clean, frame_idx, videos):
        ctx, null = per_video(context, null_context, videos)
        return conditioned_denoiser(net, frame_idx, clean, context=ctx, null_context=null, guidance=guidance)(x, t)

    denoiser.signature = level_state.signature(  # what a resumed run must share (level_state)
        context=level_state.digest(context), null=level_state.digest(null_context), guidance=guidance)
    return denoiser


def _frame_noise(seed: int, video: int, tag: str, frames: Sequence[int], shape, device) -> torch.Tensor:
    """``(len(frames), *shape)`` noise, frame ``f`` from a generator seeded by ``(seed, video, tag + f)``."""
    return torch.stack([
        torch.randn(shape, generator=item_generator(seed, video, f"{tag}{f}", device), device=device) for f in frames
    ])


def initial_state(
    plan: Any, frame_shape: Sequence[int], num_videos: int, seed: int, given: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``(n, T, *frame_shape)``: frame ``f`` of video ``v`` pure noise from ``(seed, v, f)``; the given frames
    (``plan.given``, in order: a prefix, or a prefix and keyframes) set."""
    shape, n_given = tuple(frame_shape), len(plan.given)
    if (given is None) != (n_given == 0):
        raise ValueError(f"given: the plan gives {n_given} frames; pass exactly that many (or none)")
    x = torch.stack([_frame_noise(seed, v, "frame", range(plan.length), shape, device) for v in range(num_videos)])
    if given is not None:
        if given.shape[1:] != (n_given, *shape) or given.shape[0] not in (1, num_videos):
            raise ValueError(f"given: expected (n or 1, {n_given}, {', '.join(map(str, shape))}), got {tuple(given.shape)}")
        x[:, list(plan.given)] = given.to(device=device, dtype=x.dtype).expand(num_videos, *given.shape[1:])
    return x


@torch.no_grad()
def run_level_plan(
    denoiser: WindowDenoiser,
    plan: Any,
    schedule: Any,
    frame_shape: Sequence[int],
    num_videos: int = 1,
    seed: int = 0,
    *,
    prediction: str = "eps",
    eta: float = 0.0,
    given: torch.Tensor | None = None,
    history_guidance: float = 1.0,
    history_guidance_level: int | None = None,
    batch_budget: int = 16,
    device: torch.device | str = "cpu",
    on_step: Callable[[int, int, int], None] | None = None,
    state_dir: str | os.PathLike | None = None,
    resume: bool = False,
    save_every: int = 1,
    save_interval: float = 0.0,
    stop_after_wave: int | None = None,
    waves_before: int = 0,
) -> torch.Tensor:
    """Run a :class:`vidiff.schemes.levels.LevelPlan` for ``num_videos`` videos.

    Args:
        denoiser: see :data:`WindowDenoiser` (:func:`net_denoiser` wraps a vidiff network).
        plan: the schedule (``levels``, ``windows``, ``given``, ``history_level``).
        schedule: the model's :class:`vidiff.diffusion.NoiseSchedule`.
        frame_shape: ``(c, h, w)`` (or any shape) of one frame.
        num_videos: n. seed: the run's seed.
        prediction: ``eps``, ``x0`` or ``v``. eta: DDIM's eta (0: deterministic).
        given: ``(n or 1, len(plan.given), *frame_shape)`` the given prefix, or None when the plan gives none.
        history_guidance: s (1: off). history_guidance_level: the uncond history level (default the last
            training timestep: vanilla; lower: fractional).
        batch_budget: at most this many window x video items per forward pass.
        device: where the state lives.
        on_step: ``on_step(step, steps, evaluations)`` after every global step (progress), after its state is
            saved: an exception raised there interrupts a run that ``resume`` continues.
        state_dir: folder for the resumable state (:mod:`vidiff.pipelines.level_state`), saved every
            ``save_every`` global steps (and at least ``save_interval`` seconds after the previous save) and
            after the last; None: not saved. An interrupted run loses at most the steps since the last save.
        resume: continue from ``state_dir``'s state when it exists (same settings required): the videos are
            those of an uninterrupted run, bitwise.
        stop_after_wave: raise :class:`vidiff.pipelines.Interrupted` after global step ``stop_after_wave``
            (saved first; ``vidiff sample --stop-after-wave``, tests).
        waves_before: waves of an earlier phase, added to ``state.json``'s count (combined runs).

    Returns:
        ``(n, T, *frame_shape)`` clean videos.
    """
    if num_videos < 1:
        raise ValueError(f"num_videos: expected >= 1, got {num_videos}")
    if batch_budget < 1:
        raise ValueError(f"batch_budget: expected >= 1, got {batch_budget}")
    if not eta >= 0:
        raise ValueError(f"eta: expected >= 0, got {eta!r}")
    top = schedule.num_timesteps - 1
    hg_level = top if history_guidance_level is None else int(history_guidance_level)
    if not 0 <= hg_level <= top:
        raise ValueError(f"history_guidance_level: expected a timestep in [0, {top}], got {hg_level}")
    levels, length = plan.levels, plan.length
    shape = tuple(frame_shape)
    x = initial_state(plan, shape, num_videos, seed, given, device)
    hist_noise = None
    if plan.history_level != CLEAN or history_guidance != 1.0:
        hist_noise = torch.stack([_frame_noise(seed, v, "history", range(length), shape, device)
                                  for v in range(num_videos)])
    step_gens = [item_generator(seed, v, "steps", device) for v in range(num_videos)]
    evaluations, start = 0, 0
    state_path = None if state_dir is None else Path(state_dir)
    last_save = time.monotonic()
    if save_every < 1:
        raise ValueError(f"save_every: expected >= 1, got {save_every}")
    if state_path is not None:
        sig = level_state.signature(
            plan=level_state.plan_digest(plan), seed=seed, num_videos=num_videos, prediction=prediction,
            eta=eta, history_guidance=history_guidance, history_guidance_level=hg_level, shape=shape,
            given=level_state.digest(given), denoiser=getattr(denoiser, "signature", None),
        )
        loaded = level_state.load_state(state_path, sig, num_videos) if resume else None
        if loaded is not None:
            x, start = loaded.x.to(device=device, dtype=x.dtype), loaded.next_step
            evaluations = loaded.evaluations
            for gen, st in zip(step_gens, loaded.generators):
                gen.set_state(st)
            log.info("resuming %s at step %d of %d", state_path, start, plan.steps)
    for g in range(start, plan.steps):
        windows = plan.windows[g]
        row, nxt = levels[g], levels[g + 1]
        items = [(w, v) for w in windows for v in range(num_videos)]  # window-major: step noise in plan order
        updates: list[tuple[int, list[int], torch.Tensor]] = []
        by_size: dict[int, list] = {}
        for it in items:
            by_size.setdefault(len(it[0].frames), []).append(it)
        for group in by_size.values():
            for i in range(0, len(group), batch_budget):
                batch = group[i : i + batch_budget]
                idx = torch.tensor([list(w.frames) for w, _ in batch])
                videos = torch.tensor([v for _, v in batch])
                t_lev = row[idx]  # (b, k)
                s_lev = torch.where(
                    torch.tensor([[f in set(w.update) for f in w.frames] for w, _ in batch]), nxt[idx], t_lev
                )
                xb = x[videos.to(x.device)[:, None], idx.to(x.device)]
                clean = t_lev == CLEAN
                pred, n_eval = _predict(denoiser, schedule, xb, t_lev, clean, idx, videos, plan.history_level,
                                        hist_noise, history_guidance, hg_level, device)
                evaluations += n_eval
                gens = [step_gens[v] for _, v in batch]
                new, _ = ddim_level_step(xb, pred, schedule, t_lev, s_lev, prediction=prediction, eta=eta,
                                         generator=gens)
                for j, (w, v) in enumerate(batch):
                    pos = [w.frames.index(f) for f in w.update]
                    updates.append((v, list(w.update), new[j, pos]))
        for v, frames, values in updates:
            x[v, frames] = values
        due = (g + 1) % save_every == 0 and time.monotonic() - last_save >= save_interval
        if state_path is not None and (due or g + 1 == plan.steps or g == stop_after_wave):
            last_save = time.monotonic()
            level_state.save_state(state_path, level_state.LevelState(
                x, g + 1, evaluations, [gen.get_state() for gen in step_gens], waves_before), sig)
        if stop_after_wave is not None and g == stop_after_wave:
            raise Interrupted(f"stopped after step {g} of {plan.steps} (state in {state_path})")
        if on_step is not None:
            on_step(g, plan.steps, evaluations)
    return x


def _predict(denoiser, schedule, xb, t_lev, clean, idx, videos, history_level, noise, scale, hg_level, device):
    """The (history-guided) prediction for one batch; returns ``(pred, network evaluations)``."""

    def shown(rows: torch.Tensor, level: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Items ``rows`` of the batch with their clean frames shown at ``level`` (clean when :data:`CLEAN`)."""
        x, t, c = xb[rows.to(xb.device)], t_lev[rows], clean[rows]
        if level == CLEAN or not bool(c.any()):
            return x, t.clamp(min=0), c
        nz = noise[videos[rows].to(noise.device)[:, None], idx[rows].to(noise.device)]
        lev = torch.full_like(t, level)
        noised = schedule.q_sample(x, lev.to(x.device), nz.to(x.dtype))
        mask = c.to(x.device).reshape(*c.shape, *([1] * (x.ndim - 2)))
        return torch.where(mask, noised, x), torch.where(c, lev, t.clamp(min=0)), torch.zeros_like(c)

    def evaluate(rows: torch.Tensor, level: int) -> torch.Tensor:
        x, t, c = shown(rows, level)
        return denoiser(x, t.to(device), c.to(device), idx[rows].to(device), videos[rows].to(device))

    everything = torch.arange(xb.shape[0])
    pred = evaluate(everything, history_level)
    with_history = clean.any(dim=1).nonzero().flatten()
    if scale == 1.0 or len(with_history) == 0:
        return pred, xb.shape[0]
    uncond = evaluate(with_history, hg_level)
    rows = with_history.to(pred.device)
    pred = pred.clone()
    pred[rows] = uncond + scale * (pred[rows] - uncond)
    return pred, xb.shape[0] + len(with_history)


def sample_level_videos(
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
    save_every: int = 1,
    save_interval: float = 10.0,
    waves_before: int = 0,
) -> torch.Tensor:
    """Long videos from a :class:`vidiff.pipelines.VideoModel` with a per-frame schedule::

        model = load_sampling_model("last.ckpt")
        plan = level_plan("fifo", length=300, max_frames=model.max_frames, num_timesteps=model.schedule.num_timesteps)
        videos = sample_level_videos(model, plan, num_videos=2, seed=0)   # (2, 300, c, h, w) in [-1, 1]

    ``given`` ``(n or 1, len(plan.given), c, h, w)`` is in model space (encode pixels with ``model.encode``).
    ``settings``: only ``eta``, ``guidance`` and ``history_guidance`` apply (the plan holds the levels);
    ``conditioning``, ``resume`` (saved at most every ``save_interval`` seconds) and ``options`` as in
    :func:`vidiff.pipelines.long_video.sample_long_videos`; the rest as :func:`run_level_plan`.
    """
    from tqdm.auto import tqdm

    settings, conditioning = settings or SamplerSettings(), conditioning or Conditioning()
    resume, options = resume or ResumeOptions(), options or RunOptions(progress=True)
    net, device = model.net, model.device
    bar = tqdm(total=plan.steps, disable=not options.progress, unit="step", desc="sampling", dynamic_ncols=True)

    def on_step(step: int, steps: int, evaluations: int) -> None:
        bar.update(step + 1 - bar.n)  # over the whole run: a resumed run starts at its saved step
        bar.set_postfix(evals=evaluations)

    try:
        frames = run_level_plan(
            net_denoiser(net, conditioning.context, conditioning.uncond, settings.guidance), plan, model.schedule,
            model.frame_shape, num_videos, seed, prediction=model.prediction, eta=settings.eta, given=given,
            history_guidance=settings.history_guidance, history_guidance_level=history_guidance_level,
            batch_budget=options.batch_budget, device=device, on_step=on_step, state_dir=resume.state_dir,
            resume=resume.resume, save_every=save_every, save_interval=save_interval,
            stop_after_wave=resume.stop_after_wave, waves_before=waves_before,
        )
    finally:
        bar.close()
    return model.decode(frames, chunk_size=options.decode_chunk) if decode else frames

