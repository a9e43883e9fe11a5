"""The sampling-speed options shared by `vidiff sample` and `vidiff evaluate` (:mod:`vidiff.pipelines.speed`)."""

from __future__ import annotations

import argparse
from typing import Any


def add_speed_arguments(parser: argparse.ArgumentParser) -> None:
    """``--precision``, ``--compile``, ``--channels-last``, ``--no-inference-mode`` in their own group."""
    g = parser.add_argument_group("speed (docs/benchmarks.md, 'Cost of one sampling step')")
    g.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="network arithmetic: fp32 (default) or bf16 autocast (faster on CPUs with AVX512-BF16 "
                        "and on GPUs; outputs differ by about 0.1)")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the network (the first call compiles: minutes on a CPU)")
    g.add_argument("--channels-last", action="store_true", help="the network in channels-last memory format")
    g.add_argument("--no-inference-mode", action="store_true",
                   help="run the network under no_grad instead of inference_mode (same numbers, slower)")


def speed_of(args: argparse.Namespace) -> Any:
    """The :class:`vidiff.pipelines.Speed` of parsed options."""
    from vidiff.pipelines import Speed

    return Speed(precision=args.precision, inference=not args.no_inference_mode,
                 channels_last=args.channels_last, compile=args.compile)
