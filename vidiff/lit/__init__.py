"""Lightning side of vidiff: modules composing the pure-torch parts, EMA, callbacks, checkpoint IO and the CLI.

``vidiff fit|validate|test|predict`` run :func:`vidiff.lit.cli.run_lightning_cli`; :func:`vidiff.lit.load.load_model`
turns a checkpoint into an inference-ready :class:`VideoDiffusion` (EMA weights applied, eval mode).
"""

import os
import sys

if "torch" not in sys.modules:
    # OpenMP threads that busy-wait stall every op when the CPU is busy: on a loaded 2-core machine a tiny-model
    # training step took 18 s with the default (spinning) policy and 1.4 s with PASSIVE. OpenMP reads this when
    # torch is first imported, so it only applies where vidiff.lit imports torch first (`vidiff fit ...`).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from vidiff.lit.ema import EMA  # noqa: E402
from vidiff.lit.load import load_model  # noqa: E402
from vidiff.lit.video_diffusion import VideoDiffusion  # noqa: E402

__all__ = ["EMA", "VideoDiffusion", "load_model"]
