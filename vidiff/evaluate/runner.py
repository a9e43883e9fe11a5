"""Run one evaluation: ground truth, the model's videos through the long-video executor, baselines, scores.

    from vidiff.evaluate import EvalConfig, evaluate
    model = vidiff.pipelines.load_sampling_model("last.ckpt")
    report, videos = evaluate(model, world_settings(None, 32), EvalConfig("prediction", baselines=["all"]))
"""

from __future__ import annotations

import logging
import time
import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from vidiff.arguments import check_int
from vidiff.evaluate.baselines import copy_last, extrapolate_centres, linear_blend, noise_frames
from vidiff.evaluate.scoring import detect_many, score_centres, score_videos
from vidiff.evaluate.tasks import DEFAULT_STEP_SIZES, TaskSpec, resolve_baselines, task_spec
from vidiff.pipelines.stages import DEFAULT_SPACING
from vidiff.evaluate.truth import GroundTruth, eval_world, ground_truth

log = logging.getLogger(__name__)

__all__ = ["EvalConfig", "evaluate", "generate", "baseline_videos", "TRUTH"]

#: Column name of the ground truth scored like a method (the ceiling of the detection-based scores).
TRUTH = "ground truth"


@dataclass
class EvalConfig:
    """Settings of one evaluation (the options of `vidiff evaluate`).

    Attributes:
        task: one of :data:`vidiff.evaluate.EVAL_TASKS`.
        num_videos: ground-truth videos (and samples).
        scheme: long-video scheme (default per task, :data:`vidiff.evaluate.DEFAULT_SCHEMES`).
        sampler, steps, eta: diffusion sampler settings per stage.
        guidance: classifier-free guidance scale (text task).
        history_guidance: history guidance scale for stages with observed frames (1 = off).
        spacing: timestep spacing (``trailing``, ``leading``, ``linspace``).
        seed: sampling seed (and the noise baseline's).
        num_observed, horizon, length: the task's frames (:func:`vidiff.evaluate.task_spec`).
        max_frames: K per stage (default the model's).
        step_size: frames generated per stage (default the scheme's).
        baselines: baseline names or ``"all"``.
        batch_budget: stage x video items per forward pass.
        split_offset: shifts the evaluation split (another set of held-out videos).
        i3d: local I3D weights file for FVD/KVD, or None.
        truth: also score the ground truth itself (column ``ground truth``).
        progress: progress bar while sampling.
    """

    task: str
    num_videos: int = 16
    scheme: str | None = None
    sampler: str = "ddim"
    steps: int = 50
    eta: float = 0.0
    guidance: float = 1.0
    history_guidance: float = 1.0
    spacing: str = DEFAULT_SPACING
    seed: int = 0
    num_observed: int = 8
    horizon: int = 8
    length: int | None = None
    max_frames: int | None = None
    step_size: int | None = None
    baselines: list[str] = field(default_factory=list)
    batch_budget: int = 16
    split_offset: int = 0
    i3d: str | None = None
    truth: bool = True
    progress: bool = True


def _check(cfg: EvalConfig, model: Any) -> int:
    """Validate ``cfg``; returns K."""
    from vidiff.diffusion import check_sampler

    for name in ("num_videos", "steps", "batch_budget"):
        check_int(name, getattr(cfg, name))
    check_sampler(cfg.sampler)
    k = cfg.max_frames or (getattr(model, "max_frames", None) if model is not None else None) or 8
    check_int("max_frames", k, 2)
    if model is not None and cfg.task == "text" and getattr(model, "text_encoder", None) is None:
        raise ValueError("task: 'text' needs a model with a text encoder (this checkpoint has none)")
    return k


def generate(model: Any, spec: TaskSpec, truth: GroundTruth, cfg: EvalConfig, max_frames: int) -> torch.Tensor:
    """The model's videos for the task: the given ground-truth frames (and captions) in, ``(n, T, c, h, w)`` out."""
    from vidiff.pipelines import Conditioning, GivenFrames, RunOptions, SamplerSettings, VideoPipeline

    pipe = VideoPipeline(model)
    try:
        stages = pipe.plan(spec.scheme, length=spec.length, max_frames=max_frames, step_size=cfg.step_size,
                           given=spec.given, steps=cfg.steps, spacing=cfg.spacing)
    except ValueError as err:
        raise ValueError(f"scheme: {spec.scheme!r} cannot run the {spec.task} task ({err})") from err
    conditioning = Conditioning()
    if spec.uses_caption:
        with torch.no_grad():
            text = model.text_encoder
            conditioning = Conditioning(text.encode(truth.captions), text.null_embedding(1))
    settings = SamplerSettings(cfg.sampler, cfg.steps, cfg.eta, cfg.spacing, cfg.guidance,
                               history_guidance=cfg.history_guidance)
    given = GivenFrames(truth.videos[:, list(spec.given)], list(spec.given)) if spec.given else None
    videos = pipe.run(
        stages, length=spec.length, num_videos=len(truth), seed=cfg.seed, settings=settings, given=given,
        conditioning=conditioning, max_frames=max_frames,
        options=RunOptions(batch_budget=cfg.batch_budget, progress=cfg.progress),
    )
    return videos.float().clamp(-1, 1).cpu()


def baseline_videos(name: str, spec: TaskSpec, truth: GroundTruth, seed: int = 0) -> torch.Tensor | list[dict]:
    """A baseline's output: ``(n, T, c, h, w)`` videos, or (``linear`` for prediction) per-video
    predicted centres at the scored frames (colour -> ``(k, 2)``)."""
    if name == "copy-last":
        return copy_last(truth.videos, spec.given)
    if name == "noise":
        return noise_frames(truth.videos, spec.given, torch.Generator().manual_seed(seed))
    if name == "linear":
        if spec.task == "interpolation":
            return linear_blend(truth.videos, spec.given)
        given = list(spec.given)
        return [extrapolate_centres(det, given, spec.scored) for det in detect_many(truth.videos[:, given])]
    raise ValueError(f"baseline: unknown baseline {name!r}; valid names: copy-last, linear, noise")


def _distances(results: dict, videos: dict[str, torch.Tensor], truth: GroundTruth, spec: TaskSpec, path: str) -> None:
    """Add ``fvd`` and ``kvd`` (first 16 scored frames) for every method with videos."""
    from vidiff.metrics import FVD_FRAMES, fvd, kvd, load_i3d
    from vidiff.metrics.i3d import MIN_FRAMES

    if len(spec.scored) < MIN_FRAMES:
        raise ValueError(f"i3d: FVD needs >= {MIN_FRAMES} scored frames; the {spec.task} task scores {len(spec.scored)}")
    if len(truth) < 2:
        raise ValueError(f"num_videos: FVD needs >= 2 videos, got {len(truth)}")
    net = load_i3d(path)
    frames = list(spec.scored[:FVD_FRAMES])
    real = truth.videos[:, frames]
    for name, vids in videos.items():
        results[name]["fvd"] = fvd(real, vids[:, frames], net)
        results[name]["kvd"] = kvd(real, vids[:, frames], net)


def context_use_scores(
    model: Any, videos: torch.Tensor, max_frames: int, seed: int = 0, stride: int = 1
) -> dict[str, float]:
    """``{"context_use t/T=0.8": ratio, ...}``: the context-use diagnostic on frames ``0, stride, 2 stride, ...``
    (``max_frames`` of them) of the held-out videos, the earliest half observed
    (:func:`vidiff.metrics.context.context_use`; 1.0 = the observed frames are ignored)."""
    from vidiff.metrics.context import context_use, prediction_mask

    k = min(max_frames, (videos.shape[1] - 1) // stride + 1)
    if videos.shape[0] < 2 or k < 2:
        return {}
    device = next(iter(model.net.parameters())).device if hasattr(model.net, "parameters") else "cpu"
    frame_idx = torch.arange(k, device=device).repeat(len(videos), 1) * stride
    clips = videos[:, frame_idx[0].cpu()].to(device)
    x0 = model.encode(clips)
    ctx = None if model.text_encoder is None else model.text_encoder.null_embedding(len(clips)).to(device)
    ratios = context_use(model.net, model.schedule, model.prediction, x0, frame_idx, prediction_mask(frame_idx),
                         context=ctx, seed=seed)
    return {f"context_use t/T={level:g}": ratio for level, ratio in ratios.items()}


def evaluate(
    model: Any, world: dict[str, Any], cfg: EvalConfig
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Score a model (and baselines) on one task.

    Args:
        model: a :class:`vidiff.pipelines.VideoModel`, or None to score only the baselines.
        world: Shapes-world settings (:func:`vidiff.evaluate.world_settings`).
        cfg: the settings.

    Returns:
        ``(report, videos)``: the report dict (:func:`vidiff.evaluate.build_report`) and the videos of every
        method that makes videos, ``(n, T, c, h, w)`` each, plus the ground truth under :data:`TRUTH`.
    """
    from vidiff.evaluate.report import build_report

    max_frames = _check(cfg, model)
    if cfg.scheme is None and cfg.step_size is None:  # the task's default scheme with its default step size
        cfg = dataclasses.replace(cfg, step_size=DEFAULT_STEP_SIZES.get(cfg.task))
    spec = task_spec(cfg.task, max_frames, num_observed=cfg.num_observed, horizon=cfg.horizon, length=cfg.length,
                     scheme=cfg.scheme)
    names = resolve_baselines(cfg.task, cfg.baselines)
    if model is None and not names:
        raise ValueError("baseline: with no model, name at least one baseline to score")
    truth = ground_truth(eval_world(world, cfg.num_videos, spec.length, cfg.split_offset), spec.length)
    results: dict[str, dict] = {}
    videos: dict[str, torch.Tensor] = {}
    seconds = None
    if model is not None:
        start = time.perf_counter()
        videos["model"] = generate(model, spec, truth, cfg, max_frames)
        seconds = round(time.perf_counter() - start, 2)
        results["model"] = score_videos(videos["model"], truth, spec)
        results["model"].update(context_use_scores(model, truth.videos, max_frames, cfg.seed))
    for name in names:
        out = baseline_videos(name, spec, truth, cfg.seed)
        if isinstance(out, torch.Tensor):
            videos[name] = out
            results[name] = score_videos(out, truth, spec)
        else:
            results[name] = score_centres(out, truth, spec)
    if cfg.truth:
        results[TRUTH] = score_videos(truth.videos, truth, spec, pixels=False)
    if cfg.i3d is not None:
        _distances(results, videos, truth, spec, cfg.i3d)
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("progress", "truth")}
    settings.update(max_frames=max_frames, scheme=spec.scheme, length=spec.length, sampling_seconds=seconds,
                    world={k: v for k, v in world.items()})
    videos[TRUTH] = truth.videos
    return build_report(spec, results, settings), videos
