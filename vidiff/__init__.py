"""vidiff: video and long-horizon video generation with diffusion models."""

__version__ = "0.1.0"
