"""The generation layer: one path from every front door (``vidiff sample / evaluate / txt2img``, validation samples
during ``vidiff fit``, Python) down to the diffusion core and the network. Pure torch: no Lightning.

- :mod:`~vidiff.pipelines.model`: :class:`VideoModel`, the parts of a trained model that sampling uses;
- :mod:`~vidiff.pipelines.load`: :func:`load_sampling_model`, a checkpoint or weights file -> :class:`VideoModel`;
- :mod:`~vidiff.pipelines.inputs`: :class:`GivenFrames`, :class:`Conditioning`, :class:`ResumeOptions`,
  :class:`RunOptions`, the inputs of a generation call;
- :mod:`~vidiff.pipelines.denoiser`: :func:`conditioned_denoiser`, the one network-to-sampler wrapper (frames,
  classifier-free, reconstruction and history guidance);
- :mod:`~vidiff.pipelines.stages` / :mod:`~vidiff.pipelines.long_video`: the stage executor and whole plans
  (waves, batches, per-item generators, progress, resume); :func:`fill_frames` for validation clips;
- :mod:`~vidiff.pipelines.level_video`: the per-frame executor (FIFO, Diffusion Forcing, rolling);
- :mod:`~vidiff.pipelines.speed`: :class:`Speed` / :func:`accelerate`, the levers on one network evaluation;
- :mod:`~vidiff.pipelines.t2i`: :class:`TextToImage`;
- :mod:`~vidiff.pipelines.video`: :class:`VideoPipeline` and :func:`load`, the Python API.
"""

from vidiff.pipelines.denoiser import conditioned_denoiser
from vidiff.pipelines.inputs import Conditioning, GivenFrames, ResumeOptions, RunOptions
from vidiff.pipelines.level_video import run_level_plan, sample_level_videos
from vidiff.pipelines.load import load_sampling_model
from vidiff.pipelines.long_video import Interrupted, fill_frames, sample_long_videos
from vidiff.pipelines.model import VideoModel
from vidiff.pipelines.speed import Speed, accelerate
from vidiff.pipelines.stages import DEFAULT_SPACING, DEFAULT_STEPS, SamplerSettings, StageRunner
from vidiff.pipelines.t2i import TextToImage
from vidiff.pipelines.video import VideoPipeline, load, make_plan

__all__ = [
    "DEFAULT_SPACING",
    "DEFAULT_STEPS",
    "Conditioning",
    "GivenFrames",
    "Interrupted",
    "ResumeOptions",
    "RunOptions",
    "SamplerSettings",
    "Speed",
    "StageRunner",
    "TextToImage",
    "VideoModel",
    "VideoPipeline",
    "accelerate",
    "conditioned_denoiser",
    "fill_frames",
    "load",
    "load_sampling_model",
    "make_plan",
    "run_level_plan",
    "sample_level_videos",
    "sample_long_videos",
]
