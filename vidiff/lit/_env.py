"""Process environment for Lightning runs; imported by ``vidiff.lit`` before anything imports torch.

OpenMP threads that busy-wait stall every op when the CPU is busy: on a loaded 2-core machine a tiny-model training
step took 18 s with the default (spinning) policy and 1.4 s with ``OMP_WAIT_POLICY=PASSIVE``. OpenMP reads the
variable when torch is first imported, so it only applies where ``vidiff.lit`` imports torch first (``vidiff fit``);
an explicit setting always wins.
"""

import os
import sys

if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
