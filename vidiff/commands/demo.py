"""`vidiff demo`: the main job of README's two-command set-up."""

from __future__ import annotations

import argparse

HELP = "train the tiny Shapes-world model on CPU and sample from it (README's main job)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="run folder (default: runs/demo)")


def run(args: argparse.Namespace) -> int:
    raise SystemExit("vidiff demo: training lands with issue 4; nothing to run yet")
