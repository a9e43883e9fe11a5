"""Long-video sampling: a model and a plan in, whole videos out (batched, resumable, with progress).

:class:`VideoModel` gathers what sampling needs from a trained model (``vidiff.lit.load_model`` returns a
module it wraps with :meth:`VideoModel.from_module`). :func:`sample_long_videos` runs a plan
(:func:`vidiff.schemes.plan`) wave by wave with :class:`vidiff.long_video.StageRunner`::

    model = VideoModel.from_module(vidiff.lit.load_model("last.ckpt"))
    stages = vidiff.schemes.plan("hierarchy-2", length=300, max_frames=20, step_size=None)
    videos = sample_long_videos(model, stages, length=300, num_videos=4, seed=0)   # (4, 300, c, h, w)
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from vidiff.io.atomic import atomic_path, write_json_atomic
from vidiff.io.errors import reading, writing
from vidiff.long_video import Item, NetFn, SamplerSettings, StageRunner, group_items

log = logging.getLogger(__name__)

STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"


class Interrupted(RuntimeError):
    """Raised by ``stop_after_wave`` (tests and ``--stop-after-wave``): the state on disk is resumable."""


@dataclass
class VideoModel:
    """The parts of a trained model that sampling uses.

    Attributes:
        net: ``net(x, timesteps, frame_idx, observed, context)`` on ``(b, t, c, h, w)`` in model space.
        schedule: the training noise schedule.
        prediction: ``eps``, ``x0`` or ``v``.
        frame_shape: ``(c, h, w)`` of one frame in model space (latents for latent models).
        image_shape: ``(c, h, w)`` of one decoded frame.
        autoencoder: has ``encode_video(x, chunk_size)`` / ``decode_video(z, chunk_size)``, or None (pixel model).
        text_encoder: has ``encode(list[str]) -> (b, L, d)`` and ``null_embedding(b)``, or None.
        max_frames: frames the model saw per training sample (K), if known.
    """

    net: NetFn
    schedule: Any
    prediction: str
    frame_shape: tuple[int, int, int]
    image_shape: tuple[int, int, int]
    autoencoder: Any = None
    text_encoder: Any = None
    max_frames: int | None = None

    @classmethod
    def from_module(cls, module: Any) -> VideoModel:
        """Wrap a trained module exposing ``net``, ``schedule``, ``prediction`` and its frame geometry."""
        for name in ("net", "schedule", "prediction"):
            if getattr(module, name, None) is None:
                raise ValueError(f"ckpt: the loaded model has no {name!r}; is this a vidiff video diffusion model?")
        image_shape = _first_shape(module, ("image_shape", "frame_shape"))
        autoencoder = getattr(module, "autoencoder", None)
        if image_shape is None:
            channels = _first_attr(module, ("channels", "image_channels", "in_channels"))
            size = _first_attr(module, ("image_size", "size", "resolution"))
            if channels is None or size is None:
                raise ValueError("ckpt: the loaded model does not say its image size and channels")
            h, w = (size, size) if isinstance(size, int) else tuple(size)
            image_shape = (int(channels), int(h), int(w))
        frame_shape = _first_shape(module, ("latent_shape",))
        if frame_shape is None:
            frame_shape = image_shape
            if autoencoder is not None:
                frame_shape = tuple(autoencoder.latent_shape(image_shape[1], image_shape[2]))
        return cls(
            net=module.net,
            schedule=module.schedule,
            prediction=module.prediction,
            frame_shape=tuple(int(v) for v in frame_shape),
            image_shape=tuple(int(v) for v in image_shape),
            autoencoder=autoencoder,
            text_encoder=getattr(module, "text_encoder", None),
            max_frames=_first_attr(module, ("max_frames",)),
        )

    def encode(self, video: torch.Tensor, chunk_size: int = 16) -> torch.Tensor:
        """Pixel video ``(b, t, c, h, w)`` in [-1, 1] -> model space (identity for pixel models)."""
        if self.autoencoder is None:
            return video
        return self.autoencoder.encode_video(video, chunk_size=chunk_size)

    def decode(self, z: torch.Tensor, chunk_size: int = 16) -> torch.Tensor:
        """Model-space video ``(b, t, c', h', w')`` -> pixels ``(b, t, c, h, w)``, ``chunk_size`` frames a call."""
        if self.autoencoder is None:
            return z
        return self.autoencoder.decode_video(z, chunk_size=chunk_size)


def _first_attr(obj: Any, names: Sequence[str]) -> Any:
    for source in (obj, getattr(obj, "hparams", None)):
        for name in names:
            value = source.get(name) if isinstance(source, dict) else getattr(source, name, None)
            if value is not None:
                return value
    return None


def _first_shape(obj: Any, names: Sequence[str]) -> tuple[int, ...] | None:
    value = _first_attr(obj, names)
    return None if value is None else tuple(value)


def _signature(**fields: Any) -> str:
    return json.dumps(fields, sort_keys=True, default=str)


def _save_state(state_dir: Path, frames: torch.Tensor, next_wave: int, signature: str) -> None:
    """Frames so far and the plan position, in one atomically replaced safetensors file (+ a json copy)."""
    from safetensors.torch import save_file

    meta = {"next_wave": str(next_wave), "signature": signature}
    path = state_dir / STATE_TENSORS
    kept = (
        f"the previous state in {path} is intact; free space and rerun with --resume"
        if path.is_file()
        else "no state was saved yet; free space and run again"
    )
    with atomic_path(path) as tmp, writing(path, kept):
        save_file({"frames": frames.detach().cpu().contiguous()}, str(tmp), metadata=meta)
    with writing(state_dir / STATE_JSON, f"the state in {path} is saved; free space and rerun with --resume"):
        write_json_atomic(state_dir / STATE_JSON, {"next_wave": next_wave, "signature": json.loads(signature)})


def _load_state(state_dir: Path, signature: str) -> tuple[torch.Tensor, int] | None:
    from safetensors import safe_open

    path = state_dir / STATE_TENSORS
    if not path.is_file():
        return None
    with reading(path, "sampling state", "rerun with --overwrite instead of --resume to sample afresh"), safe_open(
        str(path), framework="pt"
    ) as f:
        meta = f.metadata() or {}
        frames = f.get_tensor("frames") if meta.get("signature") == signature else None
    if frames is None:
        raise ValueError(
            f"resume: {path} was written by a run with other settings; "
            "use the same settings (or another --out) to resume"
        )
    return frames, int(meta["next_wave"])


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


def _digest(t: torch.Tensor | None) -> str | None:
    if t is None:
        return None
    import hashlib

    return hashlib.sha256(t.detach().cpu().float().contiguous().numpy().tobytes()).hexdigest()[:16]


def sample_long_videos(
    model: VideoModel,
    stages: Sequence[Any],
    length: int,
    num_videos: int = 1,
    seed: int = 0,
    settings: SamplerSettings | None = None,
    given: torch.Tensor | None = None,
    given_idx: Sequence[int] = (),
    context: torch.Tensor | None = None,
    null_context: torch.Tensor | None = None,
    batch_budget: int = 8,
    state_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    stop_after_wave: int | None = None,
    max_frames: int | None = None,
    sample_fn: Callable[..., torch.Tensor] | None = None,
    decode: bool = True,
    decode_chunk: int = 16,
) -> torch.Tensor:
    """Run a plan for ``num_videos`` videos of ``length`` frames.

    Args:
        model: the model parts.
        stages: the plan (stages with ``observed``, ``latent`` and optionally ``adaptive``).
        length: T, frames per video.
        num_videos: n.
        seed: the run's seed; item (video v, stage s) draws its noise from a generator seeded by (seed, v, s).
        settings: sampler settings (default DDIM, 50 steps).
        given: ``(n or 1, g, c, h, w)`` frames in model space supplied by the user, or None.
        given_idx: their g positions in the video.
        context: ``(n, L, d)`` text conditioning, or None.
        null_context: ``(1 or n, L, d)`` unconditional embedding for classifier-free guidance, or None.
        batch_budget: at most this many stage x video items per forward pass (1 = sequential).
        state_dir: folder for ``state.safetensors`` / ``state.json`` (saved after every wave), or None.
        resume: continue from ``state_dir``'s state when it exists (same settings required).
        progress: show a tqdm bar over the plan's denoiser evaluations.
        stop_after_wave: raise :class:`Interrupted` after saving this wave (to test resuming).
        max_frames: K, the most frames a stage may hold (adaptive stages fill up to it); default the
            model's ``max_frames``, else the largest stage of the plan.
        sample_fn: sampler entry point (default :func:`vidiff.diffusion.sample`).
        decode: decode latents with the model's autoencoder at the end.
        decode_chunk: frames per decoder call.

    Returns:
        ``(n, T, c, h, w)`` videos: pixels in [-1, 1] (or model-space latents with ``decode=False``).
    """
    from vidiff.schemes.stage import batches, check_plan

    settings = settings or SamplerSettings()
    if num_videos < 1:
        raise ValueError(f"num_videos: expected >= 1, got {num_videos}")
    given_idx = [int(i) for i in given_idx]
    if (given is None) != (not given_idx):
        raise ValueError("given: frames and given_idx must be supplied together")
    if given is not None and (given.ndim != 5 or given.shape[1] != len(given_idx)):
        raise ValueError(f"given: expected (n or 1, {len(given_idx)}, c, h, w), got {tuple(given.shape)}")
    if given is not None and given.shape[0] not in (1, num_videos):
        raise ValueError(f"given: batch must be 1 or num_videos={num_videos}, got {given.shape[0]}")
    if not stages:
        raise ValueError("stages: the plan is empty (every frame given?); nothing to sample")
    max_frames = max_frames or model.max_frames or max(len(s.observed) + len(s.latent) for s in stages)
    check_plan(stages, length, max_frames, given_idx)
    device = next(iter(model.net.parameters())).device if hasattr(model.net, "parameters") else torch.device("cpu")
    frames = torch.zeros(num_videos, length, *model.frame_shape, device=device)
    if given is not None:
        frames[:, given_idx] = given.to(device=device, dtype=frames.dtype).expand(num_videos, *given.shape[1:])
    waves = batches(stages)
    available, seen = [], set(given_idx)
    for stage in stages:
        available.append(sorted(seen))
        seen |= set(stage.latent)

    signature = _signature(
        seed=seed, length=length, num_videos=num_videos, settings=asdict(settings),
        stages=[[list(s.observed), list(s.latent), bool(getattr(s, "adaptive", False))] for s in stages],
        given_idx=given_idx, given=_digest(given), context=_digest(context), null=_digest(null_context),
    )
    start = 0
    state_path = Path(state_dir) if state_dir is not None else None
    if state_path is not None and resume:
        loaded = _load_state(state_path, signature)
        if loaded is not None:
            frames, start = loaded[0].to(device), loaded[1]
            log.info("resuming %s at wave %d of %d", state_path, start, len(waves))

    runner = StageRunner(model.net, model.schedule, model.prediction, settings, sample_fn)
    done_before = sum(len(waves[w]) for w in range(start)) * num_videos * settings.steps
    bar = tqdm(
        total=len(stages) * num_videos * settings.steps, initial=done_before, disable=not progress,
        unit="eval", desc="sampling", dynamic_ncols=True,
    )
    runner.on_evaluation = bar.update
    try:
        with torch.no_grad():
            for w in range(start, len(waves)):
                items = [
                    Item(v, j, _stage_observed(stages[j], available[j], frames[v], max_frames),
                         tuple(stages[j].latent))
                    for j in waves[w]
                    for v in range(num_videos)
                ]
                for batch in group_items(items, batch_budget):
                    out = runner.run(frames, batch, seed, context, null_context)
                    for it, video in zip(batch, out):
                        frames[it.video, list(it.latent)] = video[len(it.observed):]
                bar.set_postfix(wave=f"{w + 1}/{len(waves)}")
                if state_path is not None:
                    _save_state(state_path, frames, w + 1, signature)
                if stop_after_wave is not None and w == stop_after_wave:
                    raise Interrupted(f"stopped after wave {w} of {len(waves)} (state in {state_path})")
    finally:
        bar.close()
    if decode and model.autoencoder is not None:
        with torch.no_grad():
            frames = model.decode(frames, chunk_size=decode_chunk)
    return frames
