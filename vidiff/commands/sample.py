"""`vidiff sample`: long videos from a trained checkpoint, written as mp4 (+ gif, png strip) with a gallery page.

    vidiff sample --ckpt runs/shapes_tiny/checkpoints/last.ckpt --scheme hierarchy-2 --length 300 \\
        --max-frames 8 --sampler ddim --steps 50 --num-videos 4 --seed 0 --out samples/long

Conditioning: ``--observed clip.mp4 --num-observed 10`` continues a clip (its first frames, resized to the
model's size, become frames 0..n-1); ``--keyframes a.png b.png --keyframe-indices 0 40`` (or one video file)
fixes keyframes to interpolate between; ``--prompt`` conditions a text model (``--guidance`` for CFG).
See docs/sampling.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

HELP = "sample long videos from a checkpoint with a long-video scheme (mp4 / gif / png strip + index.html)"

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options (also the keys of scripts/sample_batch.py's config files, with ``_``)."""
    from vidiff.commands.options import add_ckpt_argument, add_device_argument, sampler_help, scheme_help
    from vidiff.pipelines.stages import DEFAULT_SPACING, DEFAULT_STEPS

    g = parser.add_argument_group("model and plan")
    add_ckpt_argument(g, "checkpoint written by `vidiff fit`, or weights file from `vidiff export` "
                         "(EMA weights)")
    g.add_argument("--scheme", default=None, metavar="SCHEME",
                   help=scheme_help("hierarchy-2; interpolate-inward with --keyframes alone"))
    g.add_argument("--length", type=int, default=300, help="frames per video (default 300)")
    g.add_argument("--max-frames", type=int, default=None, help="K, frames per stage (default: the model's)")
    g.add_argument("--step-size", type=int, default=None,
                   help="frames generated per stage (default K // 2; 2 for the --keyframes default, "
                        "interpolate-inward); df-*: new frames per chunk")
    g = parser.add_argument_group("per-frame schemes (--scheme fifo, df-pyramid, df-autoregressive, rolling)")
    from vidiff.commands.scheme import add_level_arguments

    add_level_arguments(g)
    g.add_argument("--history-guidance-level", type=int, default=None,
                   help="fractional history guidance: the uncond history is noised to this timestep "
                        "(default: the last one, i.e. history dropped)")
    g = parser.add_argument_group("sampler")
    g.add_argument("--sampler", default="ddim", metavar="SAMPLER", help=sampler_help())
    g.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help=f"denoising steps per stage (default {DEFAULT_STEPS}); per-frame schemes: levels "
                        "per frame (fifo: n = steps // K partitions unless --partitions)")
    g.add_argument("--eta", type=float, default=0.0, help="DDIM eta (0: deterministic)")
    g.add_argument("--spacing", default=DEFAULT_SPACING,
                   help="timestep spacing: trailing (default: start at the last timestep, where the noise belongs), "
                        "leading or linspace")
    g.add_argument("--history-guidance", type=float, default=1.0,
                   help="history guidance scale s (any scheme): uncond + s * (cond - uncond), uncond with the "
                        "observed frames dropped (1 = off)")
    g.add_argument("--recon-guidance", type=float, default=0.0,
                   help="reconstruction guidance weight w_r (Ho et al. 2022, eq. 7); 0 = off (default)")
    g.add_argument("--num-videos", type=int, default=4, help="videos to sample (default 4)")
    g.add_argument("--seed", type=int, default=0, help="seed; video i of a run is the same for any batching")
    g.add_argument("--batch-budget", type=int, default=16,
                   help="most stage x video items per forward pass (1 = sequential; default 16)")
    add_device_argument(g)
    g.add_argument("--decode-chunk", type=int, default=16, help="frames per autoencoder decode call (latent models)")
    g = parser.add_argument_group("conditioning")
    g.add_argument("--observed", default=None, help="a video to continue: its first --num-observed frames are given")
    g.add_argument("--num-observed", type=int, default=None, help="frames of --observed to use (default: all)")
    g.add_argument("--keyframes", nargs="+", default=None, help="images (or one video) fixed at --keyframe-indices")
    g.add_argument("--keyframe-indices", nargs="+", type=int, default=None,
                   help="positions of the keyframes in the video (default: spread evenly)")
    g.add_argument("--prompt", default=None, help="text prompt (models with a text encoder)")
    g.add_argument("--negative-prompt", default=None, help="negative prompt used in place of the empty one in CFG")
    g.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale (1 = off)")
    g = parser.add_argument_group("output")
    g.add_argument("--out", required=True, help="output folder")
    g.add_argument("--fps", type=float, default=8.0, help="frames per second of the mp4 / gif (default 8)")
    g.add_argument("--crf", type=int, default=18, help="x264 CRF, 0 lossless .. 51 worst (default 18)")
    g.add_argument("--quality", type=float, default=None, help="imageio quality 1..10, replaces --crf when given")
    g.add_argument("--gif", action="store_true", help="also write a gif per video")
    g.add_argument("--png-strip", action="store_true", help="also write a png strip of frames per video")
    g.add_argument("--resume", action="store_true", help="continue an interrupted run in --out (same settings)")
    g.add_argument("--overwrite", action="store_true",
                   help="replace an earlier run in --out: its videos, gallery and settings, or an "
                   "interrupted run's saved frames (only files vidiff wrote are removed; without it such a "
                   "folder is refused)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--stop-after-wave", type=int, default=None, help=argparse.SUPPRESS)  # tests: interrupt a run
    from vidiff.commands.options import add_speed_arguments

    add_speed_arguments(parser)


def option_error(err: Exception, options: dict[str, str]) -> Exception:
    """``err`` with its leading Python argument name (``ckpt: ...``) reworded to the command's option (``--ckpt``)."""
    message = str(err)
    for name, option in options.items():
        if message.startswith(f"{name}: "):
            return type(err)(option + message[len(name):])
    return err


def load_model_option(ckpt: str, device: str = "cpu", option: str = "--ckpt") -> Any:
    """:func:`vidiff.pipelines.load_sampling_model`; bad files raise errors naming ``option``."""
    from vidiff.pipelines import load_sampling_model

    try:
        return load_sampling_model(ckpt, device)
    except (ValueError, FileNotFoundError) as err:
        raise option_error(err, {"ckpt": option}) from err


@contextmanager
def _given_file(option: str, path: str, kind: str) -> Iterator[None]:
    """Turn whatever a decoder raises on ``path`` into one line naming ``option`` and the file (the decoder's own
    message, often a C++ log line, is logged at debug level)."""
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        raise ValueError(f"{option}: {path} is an empty file (0 bytes); give {kind} file")
    try:
        yield
    except (FileNotFoundError, KeyboardInterrupt):
        raise
    except Exception as err:  # noqa: BLE001 - decord, PyAV, ffmpeg and Pillow raise assorted types
        log.debug("%s: %s cannot be read: %s: %s", option, path, type(err).__name__, err)
        raise ValueError(
            f"{option}: {path} is not a readable {kind.split()[-1]} (truncated, corrupt or another format); "
            f"give {kind} file that {'ffmpeg' if 'video' in kind else 'Pillow'} can open"
        ) from None


def _read_image(path: str, size: tuple[int, int]) -> torch.Tensor:
    """An image file as ``(1, c, h, w)`` in [-1, 1], resized to ``size``."""
    import numpy as np
    import torch.nn.functional as F
    from PIL import Image

    from vidiff.io import to_float

    if not Path(path).is_file():
        raise FileNotFoundError(f"--keyframes: no file at {path!r}")
    with _given_file("--keyframes", path, "an image"), Image.open(path) as im:
        frame = to_float(np.asarray(im.convert("RGB"))[None])
    return F.interpolate(frame, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(-1, 1)


def given_frames(args: argparse.Namespace, image_shape: tuple[int, int, int]) -> tuple[torch.Tensor | None, list[int]]:
    """Pixel frames the user fixes and their positions, from ``--observed`` and ``--keyframes``.

    Returns:
        ``((1, g, c, h, w) in [-1, 1] or None, g indices)``.
    """
    from vidiff.io import count_frames, read_video

    c, h, w = image_shape
    frames: list[torch.Tensor] = []
    idx: list[int] = []
    if args.num_observed is not None and args.observed is None:
        raise ValueError("--num-observed: needs --observed CLIP")
    if args.observed is not None:
        if not Path(args.observed).is_file():
            raise FileNotFoundError(f"--observed: no video file at {args.observed!r}")
        with _given_file("--observed", args.observed, "a video"):
            total = count_frames(args.observed)
        n = total if args.num_observed is None else args.num_observed
        if n < 1:
            raise ValueError(f"--num-observed: expected >= 1, got {n}")
        if n > total:
            raise ValueError(f"--num-observed: {args.observed} has only {total} frames, fewer than {n}")
        with _given_file("--observed", args.observed, "a video"):
            frames.append(read_video(args.observed, num_frames=n, size=(h, w)))
        idx += list(range(n))
    if args.keyframe_indices is not None and args.keyframes is None:
        raise ValueError("--keyframe-indices: needs --keyframes")
    if args.keyframes is not None:
        if len(args.keyframes) == 1 and Path(args.keyframes[0]).suffix.lower() in VIDEO_SUFFIXES:
            if not Path(args.keyframes[0]).is_file():
                raise FileNotFoundError(f"--keyframes: no video file at {args.keyframes[0]!r}")
            with _given_file("--keyframes", args.keyframes[0], "a video"):
                keys = read_video(args.keyframes[0], size=(h, w))
        else:
            keys = torch.cat([_read_image(p, (h, w)) for p in args.keyframes])
        positions = args.keyframe_indices
        if positions is None:
            positions = torch.linspace(0, args.length - 1, len(keys)).round().long().tolist()
        if len(keys) < len(positions) or (len(keys) != len(positions) and len(args.keyframes) > 1):
            raise ValueError(f"--keyframe-indices: {len(positions)} indices for {len(keys)} keyframes")
        keys = keys[: len(positions)]
        bad = [i for i in positions if not 0 <= i < args.length]
        if bad:
            raise ValueError(f"--keyframe-indices: indices must lie in [0, --length={args.length}), got {bad}")
        if len(set(positions)) != len(positions) or set(positions) & set(idx):
            raise ValueError(f"--keyframe-indices: indices must be distinct and not observed frames, got {positions}")
        frames.append(keys)
        idx += list(positions)
    if not frames:
        return None, []
    video = torch.cat(frames)
    if video.shape[1] != c:
        video = video.mean(1, keepdim=True) if c == 1 else video[:, :c]
    if len(idx) >= args.length:
        raise ValueError(f"--num-observed/--keyframes: {len(idx)} given frames leave nothing to generate "
                         f"in --length={args.length}")
    return video[None], idx


def check_sample_options(args: argparse.Namespace, model: Any) -> tuple[str, int]:
    """Validate the plan and sampler options; returns ``(scheme, max_frames)``."""
    from vidiff.diffusion import check_sampler

    scheme = args.scheme or ("interpolate-inward" if args.keyframes and not args.observed else "hierarchy-2")
    if args.scheme is None and scheme == "interpolate-inward" and args.step_size is None:
        from vidiff.schemes.fill import INWARD_STEP_SIZE

        args.step_size = INWARD_STEP_SIZE  # as `vidiff evaluate` interpolates
    max_frames = args.max_frames or model.max_frames
    if max_frames is None:
        raise ValueError("--max-frames: the checkpoint does not record K; pass --max-frames")
    if model.max_frames is not None and max_frames > model.max_frames:
        log.warning("--max-frames %d exceeds the %d frames the model was trained with", max_frames, model.max_frames)
    if args.length < max_frames:
        raise ValueError(f"--length: expected at least --max-frames={max_frames} frames, got {args.length}")
    check_sampler(args.sampler, args.spacing, option="--")
    for name in ("steps", "num_videos", "batch_budget", "decode_chunk"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')}: expected >= 1, got {getattr(args, name)}")
    if args.eta != 0 and args.sampler != "ddim":
        raise ValueError(f"--eta: only applies to --sampler ddim, got --eta {args.eta} with {args.sampler}")
    return scheme, max_frames


def check_level_arguments(args: argparse.Namespace) -> None:
    """Options that a per-frame scheme cannot honour are refused, naming the option."""
    if args.sampler != "ddim":
        raise ValueError(f"--sampler: per-frame schemes step each frame with DDIM; got {args.sampler}")
    if args.recon_guidance:
        raise ValueError("--recon-guidance: not available with per-frame schemes (use --history-guidance)")


def plan_of(args: argparse.Namespace, pipe: Any, scheme: str, max_frames: int, given_idx: list[int]) -> Any:
    """The plan of ``--scheme`` (stages, or a per-frame schedule); errors name the option."""
    from vidiff.pipelines.video import is_per_frame

    if is_per_frame(scheme):
        check_level_arguments(args)
    try:
        return pipe.plan(scheme, length=args.length, max_frames=max_frames, step_size=args.step_size,
                         given=given_idx, steps=args.steps, spacing=args.spacing, partitions=args.partitions,
                         lookahead=args.lookahead, history_level=args.history_level,
                         keyframe_spacing=args.keyframe_spacing)
    except ValueError as err:  # the message names the plan argument (name, length, step_size, given)
        raise ValueError(f"--scheme {scheme}: {err}") from err


def sample_to_folder(args: argparse.Namespace) -> dict[str, Any]:
    """Everything `vidiff sample` does; returns the settings written to ``settings.json``."""
    from vidiff.io import (
        GalleryItem,
        lock_folder,
        write_gallery,
        write_gif,
        write_json_atomic,
        write_labelled_strip,
        write_video,
    )
    from vidiff.io.atomic import sweep_temporaries
    from vidiff.commands.options import resolve_device
    from vidiff.commands.options import speed_of
    from vidiff.io.outputs import SAMPLE_OUTPUTS, claim_folder, remove_outputs
    from vidiff.pipelines import (
        GivenFrames,
        ResumeOptions,
        RunOptions,
        SamplerSettings,
        VideoPipeline,
        accelerate,
    )

    args.device = resolve_device(args.device)
    pipe = VideoPipeline(accelerate(load_model_option(args.ckpt, args.device), speed_of(args)))
    model = pipe.model
    scheme, max_frames = check_sample_options(args, model)
    given, given_idx = given_frames(args, model.image_shape)
    plan = plan_of(args, pipe, scheme, max_frames, given_idx)
    per_frame = not isinstance(plan, list)
    if not per_frame and not plan:
        raise ValueError("--observed/--keyframes: every frame is given; nothing to sample")
    try:
        conditioning = pipe.conditioning(args.prompt, args.negative_prompt, args.num_videos)
    except ValueError as err:
        raise option_error(err, {"prompt": "--prompt", "negative_prompt": "--negative-prompt"}) from err
    if not per_frame and args.history_guidance_level is not None:
        raise ValueError("--history-guidance-level: only per-frame schemes noise the history to a level "
                         "(stage schemes drop it; use --history-guidance alone)")
    settings = SamplerSettings(args.sampler, args.steps, args.eta, args.spacing, args.guidance, args.recon_guidance,
                               history_guidance=args.history_guidance)
    out = Path(args.out)
    if args.resume and args.overwrite:
        raise ValueError("--overwrite: discards the saved state that --resume continues; give one of them")
    with lock_folder(out, what="--out"):  # one writer per folder; a second one stops at once
        sweep_temporaries(out, out / "state")  # left by a killed run; safe while we hold the lock
        resuming = args.resume and _saved_waves(out / "state") is not None
        _keep_saved_state(out / "state", args.resume, args.overwrite)
        earlier = [] if resuming else claim_folder(out, SAMPLE_OUTPUTS, args.overwrite)
        start = time.perf_counter()
        resume = ResumeOptions(out / "state", args.resume, args.stop_after_wave)
        videos = pipe.run(
            plan, length=args.length, num_videos=args.num_videos, seed=args.seed, settings=settings,
            given=None if given is None else GivenFrames(given, given_idx), conditioning=conditioning,
            resume=resume, options=RunOptions(args.batch_budget, not args.no_progress, args.decode_chunk),
            max_frames=max_frames, history_guidance_level=args.history_guidance_level,
        )
        if per_frame:
            facts = dict(stages=plan.steps, evaluations=plan.evaluations, levels_per_frame=len(plan.ladder) - 1)
        else:
            facts = dict(stages=len(plan))
        videos = videos.clamp(-1, 1)
        seconds = time.perf_counter() - start
        run_settings = used_settings(args, model, plan, scheme, max_frames, given_idx)
        run_settings.update(**facts, seconds=round(seconds, 2))
        items = []
        remove_outputs(earlier)  # the earlier run's files go only now that the new ones are ready
        kept = f"the sampled frames are kept in {out / 'state'}; free space and rerun with --resume"
        for i, video in enumerate(videos):
            stem = f"video_{i:03d}"
            write_video(out / f"{stem}.mp4", video, fps=args.fps, crf=args.crf, quality=args.quality, kept=kept)
            if args.gif:
                write_gif(out / f"{stem}.gif", video, fps=args.fps)
            shown = write_labelled_strip(out / f"{stem}.png", video, given_idx) if args.png_strip else None
            per_video = {"seed": args.seed, "prompt": args.prompt or ""}
            items.append(GalleryItem(f"{stem}.mp4", title=f"video {i}", gif=f"{stem}.gif" if args.gif else None,
                                     strip=f"{stem}.png" if args.png_strip else None, settings=per_video,
                                     num_frames=len(video), fps=args.fps, given=given_idx,
                                     strip_frames=shown))
        write_json_atomic(out / "settings.json", run_settings)
        write_gallery(out, items, run_settings, title=f"vidiff sample: {scheme}, {args.length} frames",
                      summary=summary_line(run_settings))
        for name in ("state.safetensors", "state.json"):
            (out / "state" / name).unlink(missing_ok=True)
        if (out / "state").is_dir() and not any((out / "state").iterdir()):
            (out / "state").rmdir()
        return run_settings


def used_settings(
    args: argparse.Namespace, model: Any, plan: Any, scheme: str, max_frames: int, given_idx: list[int]
) -> dict[str, Any]:
    """The values a run actually used (defaults resolved), for ``settings.json`` and the gallery: the
    options as given, then the scheme, K, step size, sampler, steps and spacing in force, the checkpoint's
    training step and the vidiff version."""
    from vidiff import __version__
    from vidiff.schemes.registry import check_plan_arguments as resolve_plan_arguments

    options = {k: v for k, v in vars(args).items() if k not in ("stop_after_wave", "no_progress")
               and not k.startswith("_")}
    per_frame = not isinstance(plan, list)
    step_size = args.step_size if per_frame else resolve_plan_arguments(
        args.length, max_frames, args.step_size, given_idx)[2]
    step = model.global_step if model.global_step is not None and model.global_step >= 0 else None
    return {**options, "scheme": scheme, "max_frames": max_frames, "step_size": step_size,
            "sampler": args.sampler, "steps": args.steps,
            "spacing": args.spacing, "given_frames": len(given_idx), "given_indices": list(given_idx),
            "image_shape": list(model.image_shape), "checkpoint_step": step, "vidiff_version": __version__}


def summary_line(settings: dict[str, Any]) -> str:
    """One line for the gallery's head: what made the videos."""
    step = settings.get("checkpoint_step")
    parts = [f"{settings['num_videos']} video{'' if settings['num_videos'] == 1 else 's'} of "
             f"{settings['length']} frames",
             f"{settings['scheme']} (K={settings['max_frames']}, step size {settings['step_size']})",
             f"{settings['sampler']}, {settings['steps']} steps, {settings['spacing']} spacing",
             f"checkpoint {settings['ckpt']}" + (f" (step {step})" if step is not None else ""),
             f"vidiff {settings['vidiff_version']}"]
    if settings.get("given_frames"):
        parts.insert(2, f"{settings['given_frames']} given frames")
    return " · ".join(parts)


def _saved_waves(state: Path) -> int | None:
    """How many waves an interrupted run saved in ``state`` (0 when unreadable), or None when nothing is saved."""
    from vidiff.pipelines.level_state import STATE_JSON, STATE_TENSORS

    if not (state / STATE_TENSORS).exists() and not (state / STATE_JSON).exists():
        return None
    try:
        return int(json.loads((state / STATE_JSON).read_text())["next_wave"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _keep_saved_state(state: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to sample over an interrupted run's frames unless ``--resume`` or ``--overwrite`` says what to do
    with them (docs/decisions.md); with ``--overwrite`` they are deleted here."""
    from vidiff.pipelines.level_state import STATE_JSON, STATE_TENSORS

    waves = _saved_waves(state)
    if waves is None or resume:
        return
    if not overwrite:
        raise ValueError(
            f"--out: {state} holds the frames of an interrupted run ({waves} wave{'' if waves == 1 else 's'} done); "
            "continue it with --resume "
            "(same settings), or add --overwrite to discard them and sample afresh"
        )
    for name in (STATE_TENSORS, STATE_JSON):
        (state / name).unlink(missing_ok=True)
    log.warning("--overwrite: discarded the interrupted run's frames in %s", state)


def resume_command(args: argparse.Namespace) -> str:
    """The command line that continues this run: the user's own (``args._argv``) with ``--resume`` added and
    ``--overwrite`` / ``--stop-after-wave`` dropped."""
    import shlex

    argv = list(getattr(args, "_argv", None) or ["--ckpt", args.ckpt, "--out", args.out, "..."])
    kept: list[str] = []
    skip = 0
    for token in argv:
        if skip:
            skip -= 1
        elif token == "--overwrite":
            continue
        elif token == "--stop-after-wave":
            skip = 1
        elif not token.startswith("--stop-after-wave="):
            kept.append(token)
    if "--resume" not in kept:
        kept.append("--resume")
    return shlex.join(["vidiff", "sample", *kept]).replace("'...'", "...")


def run(args: argparse.Namespace) -> int:
    from vidiff.io.lock import FolderInUseError

    try:
        settings = sample_to_folder(args)
    except (ValueError, FileNotFoundError, FolderInUseError) as err:
        print(f"vidiff sample: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        state = Path(args.out) / "state"
        waves = _saved_waves(state)
        if waves:
            print(f"vidiff sample: interrupted; {waves} finished wave{'' if waves == 1 else 's'} saved in {state}; "
                  "continue with: "
                  f"{resume_command(args)}", file=sys.stderr)
        else:
            print("vidiff sample: interrupted before the first wave finished; nothing was saved", file=sys.stderr)
        return 130
    work = (f"{settings['stages']} steps, {settings['evaluations']} evaluations a video" if "evaluations" in settings
            else f"{settings['stages']} stages")
    print(f"wrote {args.num_videos} videos of {args.length} frames to {args.out} "
          f"({work}, {settings['seconds']} s); open {Path(args.out) / 'index.html'}")
    return 0
