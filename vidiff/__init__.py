"""vidiff: video and long-horizon video generation with diffusion models."""

import os as _os
import sys as _sys

__version__ = "0.1.0"

# OpenMP threads that busy-wait stall every op when the CPU is busy: on a loaded 2-core machine a tiny-model
# training step took 18 s with the default (spinning) policy and 1.4 s with OMP_WAIT_POLICY=PASSIVE. OpenMP reads
# the variable when torch is first imported, so it is set here, before any vidiff module imports torch (the CLI
# and every submodule import this package first); an explicit setting always wins.
if "torch" not in _sys.modules:
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def __getattr__(name: str):
    """``vidiff.load`` (the Python API, :func:`vidiff.pipelines.load`) and the subpackages, imported on first use."""
    import importlib

    if name == "load":
        return importlib.import_module("vidiff.pipelines").load
    if name in ("io", "pipelines", "diffusion", "schemes"):
        return importlib.import_module(f"vidiff.{name}")
    raise AttributeError(f"module 'vidiff' has no attribute {name!r}")
