"""Lightning side of vidiff: modules composing the pure-torch parts, EMA, callbacks, checkpoint IO and the CLI.

``vidiff fit|validate|test|predict`` run :func:`vidiff.lit.cli.run_lightning_cli`; :func:`vidiff.lit.load.load_model`
turns a checkpoint into an inference-ready :class:`VideoDiffusion` (EMA weights applied, eval mode).
"""

from vidiff.lit.ema import EMA
from vidiff.lit.load import load_model
from vidiff.lit.video_diffusion import VideoDiffusion

__all__ = ["EMA", "VideoDiffusion", "load_model"]
