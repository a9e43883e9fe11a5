"""`vidiff export`: the sampling weights of a training checkpoint as one small safetensors file.

    vidiff export --ckpt runs/shapes_tiny/checkpoints/last.ckpt --out shapes.safetensors

The file (:mod:`vidiff.lit.weights`) holds the EMA network and the settings that rebuild the model; every
``--ckpt`` of ``vidiff sample`` / ``evaluate`` and :func:`vidiff.lit.load_model` accept it. It cannot resume
training (no optimizer state): keep the ``.ckpt`` for that.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write a checkpoint's sampling weights (EMA net + settings) to a small .safetensors file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vidiff.commands.options import add_ckpt_argument

    add_ckpt_argument(parser, "checkpoint written by `vidiff fit` (e.g. RUN/checkpoints/last.ckpt)")
    parser.add_argument("--out", required=True, help="weights file to write (.safetensors)")
    parser.add_argument("--raw", action="store_true", help="export the raw trained weights instead of the EMA ones")


def run(args: argparse.Namespace) -> int:
    from vidiff.lit.weights import export_weights

    if not Path(args.ckpt).is_file():
        raise SystemExit(f"vidiff export: --ckpt: no checkpoint file at {args.ckpt!r}")
    if not Path(args.out).resolve().parent.is_dir():
        raise SystemExit(f"vidiff export: --out: folder {str(Path(args.out).parent)!r} does not exist")
    try:
        out = export_weights(args.ckpt, args.out, use_ema=not args.raw)
    except ValueError as err:
        raise SystemExit(f"vidiff export: {err}") from None
    size = out.stat().st_size / 2**20
    print(f"wrote {out} ({size:.1f} MiB, {'raw' if args.raw else 'EMA'} weights); sample from it with"
          f" `vidiff sample --ckpt {out} ...`")
    return 0
