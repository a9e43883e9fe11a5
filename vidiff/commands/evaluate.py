"""`vidiff evaluate`: score a checkpoint (and simple baselines) on held-out Shapes-world videos.

    vidiff evaluate --ckpt runs/shapes_tiny/checkpoints/last.ckpt --task prediction --num-videos 16 \\
        --baseline all --out eval/prediction

Writes ``report.json`` and ``report.md`` (a markdown table: metrics x methods) to ``--out`` and prints the table.
Tasks, metrics and baselines: docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HELP = "score a checkpoint and baselines on held-out Shapes-world videos (prediction, interpolation, long, ...)"

TASK_CHOICES = ("unconditional", "prediction", "interpolation", "long", "text")
BASELINE_CHOICES = ("copy-last", "linear", "noise", "all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    from vidiff.commands.options import add_ckpt_argument, add_device_argument, sampler_help, scheme_help
    from vidiff.pipelines.stages import DEFAULT_SPACING, DEFAULT_STEPS

    g = parser.add_argument_group("what to evaluate")
    add_ckpt_argument(g, "checkpoint written by `vidiff fit`, or weights file from `vidiff export` "
                         "(EMA weights)")
    g.add_argument("--task", required=True, choices=TASK_CHOICES, help="what is given and what is scored")
    g.add_argument("--num-videos", type=int, default=16, help="held-out ground-truth videos (default 16)")
    g.add_argument("--num-observed", type=int, default=8,
                   help="given frames for prediction / long (default 8); interpolation clips are "
                        "--num-observed + --horizon frames with the first and last given")
    g.add_argument("--horizon", type=int, default=8, help="frames to predict (default 8)")
    g.add_argument("--length", type=int, default=None,
                   help="frames per video for long (default 128), unconditional and text (default K)")
    g.add_argument("--baseline", action="append", default=[], choices=BASELINE_CHOICES,
                   help="also score a baseline on the same ground truth (repeatable, or 'all')")
    g.add_argument("--split-offset", type=int, default=0, help="shift the held-out split (default 0)")
    g.add_argument("--i3d", default=None, help="local I3D weights file: adds FVD and KVD (docs/metrics.md)")
    g = parser.add_argument_group("sampling")
    g.add_argument("--scheme", default=None, metavar="SCHEME", help=scheme_help("per task", levels=False))
    g.add_argument("--max-frames", type=int, default=None, help="K, frames per stage (default: the model's)")
    g.add_argument("--step-size", type=int, default=None,
                   help="frames generated per stage (default: 1 for prediction with its default scheme, else the "
                        "scheme's)")
    g.add_argument("--sampler", default="ddim", metavar="SAMPLER", help=sampler_help())
    g.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help=f"denoising steps per stage (default {DEFAULT_STEPS})")
    g.add_argument("--eta", type=float, default=0.0, help="DDIM eta (default 0)")
    g.add_argument("--spacing", default=DEFAULT_SPACING,
                   help=f"timestep spacing: trailing, leading or linspace (default {DEFAULT_SPACING})")
    g.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale, text task (1 = off)")
    g.add_argument("--history-guidance", type=float, default=1.0,
                   help="history guidance scale: uncond + s * (cond - uncond), uncond with the observed frames "
                        "dropped (1 = off)")
    g.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    g.add_argument("--batch-budget", type=int, default=16, help="stage x video items per forward pass (default 16)")
    add_device_argument(g)
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    from vidiff.commands.options import add_speed_arguments

    add_speed_arguments(parser)
    g = parser.add_argument_group("output")
    g.add_argument("--out", required=True, help="folder for report.json and report.md")
    g.add_argument("--overwrite", action="store_true",
                   help="replace an earlier run's report and videos in --out (without it such a folder is "
                   "refused)")
    g.add_argument("--save-videos", type=int, default=0,
                   help="also write this many mp4s (ground truth | model side by side) to OUT/videos")


def evaluate_to_folder(args: argparse.Namespace) -> dict[str, Any]:
    """Everything `vidiff evaluate` does; returns the report."""
    from vidiff.commands.sample import load_model_option
    from vidiff.commands.options import speed_of
    from vidiff.evaluate import EvalConfig, checkpoint_world_settings, evaluate, write_report
    from vidiff.io.outputs import EVALUATE_OUTPUTS, claim_folder, remove_outputs
    from vidiff.pipelines import accelerate

    if args.save_videos < 0:
        raise ValueError(f"--save-videos: expected >= 0, got {args.save_videos}")
    from vidiff.commands.options import resolve_device

    earlier = claim_folder(args.out, EVALUATE_OUTPUTS, args.overwrite)
    args.device = resolve_device(args.device)
    model = accelerate(load_model_option(args.ckpt, args.device), speed_of(args))
    if args.i3d is not None and Path(args.i3d).is_file():  # an unsafe or wrong I3D file fails now, not after sampling
        from vidiff.metrics import load_i3d

        try:
            load_i3d(args.i3d)
        except ValueError as err:
            raise ValueError(f"--i3d: {str(err).removeprefix('path: ')}") from err
    world = checkpoint_world_settings(args.ckpt, model.image_shape[1])
    cfg = EvalConfig(
        task=args.task, num_videos=args.num_videos, scheme=args.scheme, sampler=args.sampler, steps=args.steps,
        eta=args.eta, guidance=args.guidance, history_guidance=args.history_guidance, spacing=args.spacing,
        seed=args.seed,
        num_observed=args.num_observed, horizon=args.horizon,
        length=args.length, max_frames=args.max_frames, step_size=args.step_size, baselines=list(args.baseline),
        batch_budget=args.batch_budget, split_offset=args.split_offset, i3d=args.i3d, progress=not args.no_progress,
    )
    try:
        report, videos = evaluate(model, world, cfg)
    except ValueError as err:  # name the command-line option, not the config field
        msg = str(err)
        head, _, _ = msg.partition(":")
        if head and " " not in head:
            msg = f"--{head.replace('_', '-')}{msg[len(head):]}"
        raise ValueError(msg) from err
    report["settings"]["ckpt"] = str(args.ckpt)
    out = Path(args.out)
    remove_outputs(earlier)
    write_report(out, report)
    if args.save_videos:
        _save_videos(out / "videos", videos, args.save_videos)
    return report


def _save_videos(folder: Path, videos: dict, count: int) -> None:
    """``video_III.mp4``: ground truth (left) and the model (right), for the first ``count`` videos."""
    import torch

    from vidiff.evaluate import TRUTH
    from vidiff.io import write_video

    folder.mkdir(parents=True, exist_ok=True)
    truth, model = videos[TRUTH], videos.get("model")
    for i in range(min(count, truth.shape[0])):
        frames = truth[i] if model is None else torch.cat([truth[i], model[i]], dim=-1)
        write_video(folder / f"video_{i:03d}.mp4", frames, fps=4.0)


def run(args: argparse.Namespace) -> int:
    from vidiff.evaluate.report import terminal_table

    try:
        report = evaluate_to_folder(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"vidiff evaluate: error: {err}", file=sys.stderr)
        return 2
    print(terminal_table(report), end="")
    print(f"wrote {Path(args.out) / 'report.json'} and {Path(args.out) / 'report.md'}")
    return 0
