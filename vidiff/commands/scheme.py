"""`vidiff scheme`: show a long-video sampling plan (text summary, optional ASCII table and PNG picture).

vidiff scheme --name hierarchy-2 --length 300 --max-frames 20 --given 36 --png plan.png
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from vidiff.schemes import SCHEMES, Stage, batches, plan
from vidiff.schemes.draw import ascii_plan, render_plan

HELP = "plan a long video with a sampling scheme and show it (summary, --list table, --png picture)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--name", default="hierarchy-2", help=f"scheme: {', '.join(SCHEMES)} (default: hierarchy-2)"
    )
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
    parser.add_argument(
        "--max-batch", type=int, default=None, help="at most this many stages per batched pass"
    )


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            image.save(f, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def run(args: argparse.Namespace) -> int:
    try:
        given = _given(args)
        stages = plan(args.name, args.length, args.max_frames, args.step_size, given)
        if args.max_batch is not None and args.max_batch < 1:
            raise ValueError(f"--max-batch: expected >= 1, got {args.max_batch}")
    except ValueError as err:
        print(f"vidiff scheme: {err}", file=sys.stderr)
        return 2
    step = args.step_size if args.step_size is not None else args.max_frames // 2
    head = f"{args.name}: length {args.length}, max_frames {args.max_frames}, step_size {step}"
    head += f", {len(given)} given"
    print(f"scheme {head}")
    for line in summary(stages, args.length, given, args.max_batch):
        print(f"  {line}")
    if args.list:
        print(ascii_plan(stages, args.length, given))
        print("(X generated, o observed, = given, - done earlier, . not yet)")
    if args.png:
        image = render_plan(stages, args.length, given, title=head)
        path = write_png_atomic(image, args.png)
        print(f"wrote {path} ({image.width}x{image.height})")
    return 0
