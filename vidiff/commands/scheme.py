"""`vidiff scheme`: show a long-video sampling plan (text summary, optional ASCII table and PNG picture).

vidiff scheme --name hierarchy-2 --length 300 --max-frames 20 --given 36 --png plan.png
vidiff scheme --name fifo --length 64 --max-frames 8 --partitions 2 --png fifo.png   # per-frame levels: a heat map
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vidiff.io.atomic import atomic_path
from vidiff.schemes import Stage, batches, plan
from vidiff.schemes.draw import ascii_plan, render_plan
from vidiff.schemes.levels import LevelPlan

HELP = "plan a long video with a sampling scheme and show it (summary, --list table, --png picture)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vidiff.commands.options import scheme_help
    from vidiff.pipelines.stages import DEFAULT_STEPS

    parser.add_argument("--scheme", "--name", dest="scheme", default="hierarchy-2", metavar="SCHEME",
                        help=scheme_help("hierarchy-2"))
    parser.add_argument("--length", type=int, required=True, help="T: frames in the video")
    parser.add_argument("--max-frames", type=int, required=True, help="K: frames the model sees at once")
    parser.add_argument(
        "--step-size", type=int, default=None, help="s: frames generated per stage (default: K // 2)"
    )
    given = parser.add_mutually_exclusive_group()
    given.add_argument(
        "--given", type=int, default=0, metavar="N", help="the first N frames are given (default 0)"
    )
    given.add_argument(
        "--given-indices",
        nargs="+",
        default=None,
        metavar="I",
        help="given frame indices (space or comma separated)",
    )
    parser.add_argument("--png", default=None, help="write a picture of the plan to this .png file")
    parser.add_argument("--list", action="store_true", help="print the plan as a table (one line per stage)")
    parser.add_argument("--batch-budget", "--max-batch", dest="batch_budget", type=int, default=None,
                        help="at most this many stages per batched pass (default: no limit)")
    levels = parser.add_argument_group("per-frame schemes (fifo, df-pyramid, df-autoregressive, rolling)")
    add_level_arguments(levels)
    levels.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help=f"levels each frame visits (df-*, rolling; default {DEFAULT_STEPS}); fifo: "
                             "n = steps // K partitions unless --partitions is given")
    levels.add_argument("--num-timesteps", type=int, default=1000, help="the model's training timesteps (default 1000)")
    levels.add_argument("--spacing", default=None, help="timestep spacing of the ladder (default trailing)")


def add_level_arguments(group) -> None:
    """Options of the per-frame schemes shared by `vidiff scheme` and `vidiff sample`."""
    group.add_argument("--partitions", type=int, default=None,
                       help="fifo: n, latent partitioning into n blocks of K frames (n * K levels)")
    group.add_argument("--lookahead", action="store_true", help="fifo: lookahead denoising (2x evaluations)")
    group.add_argument("--history-level", type=int, default=-1,
                       help="df-*, rolling, fifo: timestep at which clean history frames are shown (-1: clean)")
    group.add_argument("--keyframe-spacing", type=int, default=None,
                       help="combined schemes (hierarchy-2+fifo, ...): frames between keyframes, >= K "
                            "(default K)")


def make_level_plan(args: argparse.Namespace, name: str, length: int, max_frames: int, num_timesteps: int,
                    given: list[int]) -> LevelPlan:
    """The :class:`LevelPlan` of scheme ``name`` from the command's options (``--steps`` resolved)."""
    from vidiff.pipelines.video import make_plan

    return make_plan(name, length=length, max_frames=max_frames, num_timesteps=num_timesteps, step_size=args.step_size,
                     given=given, steps=args.steps, spacing=args.spacing, partitions=args.partitions,
                     lookahead=args.lookahead, history_level=args.history_level,
                     keyframe_spacing=args.keyframe_spacing)


def level_summary(p: LevelPlan) -> list[str]:
    """Facts about a per-frame schedule: steps, evaluations, ladder, windows."""
    per_step = [len(w) for w in p.windows]
    return [
        f"global steps: {p.steps}; network evaluations per video: {p.evaluations} "
        f"({p.evaluations / max(p.length - len(p.given), 1):.1f} per generated frame)",
        f"levels per frame: {len(p.ladder) - 1} (timesteps {p.ladder[0]} .. {p.ladder[-2]}, then clean)",
        f"windows per step: max {max(per_step)}, {p.max_frames} frames each",
        f"history shown {'clean' if p.history_level < 0 else f'at level {p.history_level}'}",
    ]


def _given(args: argparse.Namespace) -> list[int]:
    if args.given_indices is None:
        if args.given < 0:
            raise ValueError(f"--given: expected a number of frames >= 0, got {args.given}")
        return list(range(args.given))
    try:
        return [int(tok) for item in args.given_indices for tok in str(item).split(",") if tok.strip()]
    except ValueError:
        raise ValueError(f"--given-indices: expected integers, got {' '.join(args.given_indices)}") from None


def summary(stages: list[Stage], length: int, given: list[int], max_batch: int | None = None) -> list[str]:
    """Human-readable facts about a plan: stages, batched waves, frames per stage."""
    waves = batches(stages, max_size=max_batch)
    lines = [
        f"stages (sequential network passes): {len(stages)}",
        f"waves (batched passes): {len(waves)}, largest {max((len(w) for w in waves), default=0)} stages",
        f"frames generated: {sum(len(s.latent) for s in stages)} of {length} ({len(given)} given)",
    ]
    if stages:
        for label, sizes in (
            ("observed", [len(s.observed) for s in stages]),
            ("generated", [len(s.latent) for s in stages]),
        ):
            lines.append(
                f"{label} per stage: min {min(sizes)}, mean {sum(sizes) / len(sizes):.1f}, max {max(sizes)}"
            )
        lines.append(f"frames per stage: max {max(len(s) for s in stages)}")
    adaptive = sum(s.adaptive for s in stages)
    if adaptive:
        lines.append(f"adaptive stages (observed frames chosen at run time): {adaptive}")
    return lines


def write_png_atomic(image, path: str | os.PathLike) -> Path:
    """Save a PIL image as PNG so that ``path`` appears complete or not at all (temp file + os.replace)."""
    path = Path(path)
    with atomic_path(path) as tmp:  # the umask's permissions, not mkstemp's 0600
        image.save(tmp, format="PNG")
    return path


def run_levels(args: argparse.Namespace) -> int:
    """`vidiff scheme` for a per-frame scheme: summary, --list (the level matrix as text), --png (a heat map)."""
    from vidiff.schemes.draw_levels import ascii_levels, render_levels

    from vidiff.schemes.keyframes import KeyframePlan

    try:
        given = _given(args)
        p = make_level_plan(args, args.scheme, args.length, args.max_frames, args.num_timesteps, given)
    except ValueError as err:
        print(f"vidiff scheme: {err}", file=sys.stderr)
        return 2
    head = f"{p.name}: length {args.length}, max_frames {args.max_frames}, {len(given)} given"
    print(f"scheme {head}")
    if isinstance(p, KeyframePlan):
        def n(count: int, word: str) -> str:
            return f"{count} {word}{'' if count == 1 else 's'}"

        print(f"  keyframes every {p.spacing} frames: {len(p.keyframes)} in {n(len(p.stages), 'stage')} "
              f"({n(p.waves, 'wave')}, {n(p.stage_steps, 'step')} each), then {p.fill.name} fills the rest")
        print(f"  network evaluations per video: {p.evaluations} (keyframes {len(p.stages) * p.stage_steps}, "
              f"fill {p.fill.evaluations})")
        for line in level_summary(p.fill):
            print(f"  fill: {line}")
        p = p.display(args.num_timesteps)
    else:
        for line in level_summary(p):
            print(f"  {line}")
    if args.list:
        print(ascii_levels(p, args.num_timesteps))
        print(f"(rows = steps, columns = frames; . clean, = given, digit d: level in [d, d + 1) * {args.num_timesteps} / 10)")
    if args.png:
        image = render_levels(p, args.num_timesteps, title=head)
        path = write_png_atomic(image, args.png)
        print(f"wrote {path} ({image.width}x{image.height})")
    return 0


def run(args: argparse.Namespace) -> int:
    from vidiff.pipelines.video import is_per_frame

    if isinstance(args.scheme, str) and is_per_frame(args.scheme):
        return run_levels(args)
    try:
        given = _given(args)
        stages = plan(args.scheme, args.length, args.max_frames, args.step_size, given)
        if args.batch_budget is not None and args.batch_budget < 1:
            raise ValueError(f"--batch-budget: expected >= 1, got {args.batch_budget}")
    except ValueError as err:
        print(f"vidiff scheme: {err}", file=sys.stderr)
        return 2
    step = args.step_size if args.step_size is not None else args.max_frames // 2
    head = f"{args.scheme}: length {args.length}, max_frames {args.max_frames}, step_size {step}"
    head += f", {len(given)} given"
    print(f"scheme {head}")
    for line in summary(stages, args.length, given, args.batch_budget):
        print(f"  {line}")
    if args.list:
        print(ascii_plan(stages, args.length, given))
        print("(X generated, o observed, = given, - done earlier, . not yet)")
    if args.png:
        image = render_plan(stages, args.length, given, title=head)
        path = write_png_atomic(image, args.png)
        print(f"wrote {path} ({image.width}x{image.height})")
    return 0
