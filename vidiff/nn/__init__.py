"""Neural networks of vidiff: the space-time U-Net and its attention (pure torch; no Lightning)."""

from vidiff.nn.attention import attention, default_backend
from vidiff.nn.inflate import inflate
from vidiff.nn.unet import SpaceTimeUNet, is_temporal_name

__all__ = ["SpaceTimeUNet", "attention", "default_backend", "inflate", "is_temporal_name"]
