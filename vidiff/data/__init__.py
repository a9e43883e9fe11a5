"""Data: the Shapes world, video folders, and their LightningDataModules.

Every data set returns sample dicts (docs/data.md): "video" (k, c, h, w) in [-1, 1], "frame_idx" (k,) long,
"observed" (k,) bool, "valid" (k,) bool, "caption" str.

Exports are resolved lazily, so ``from vidiff.data import ShapesWorld`` does not import Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "EpochSampler": "sampling",
    "sample_generator": "sampling",
    "ShapesWorld": "shapes",
    "Tracks": "shapes",
    "VideoFolder": "video_folder",
    "ShapesDataModule": "datamodule",
    "VideoFolderDataModule": "datamodule",
}

__all__ = [
    "EpochSampler",
    "ShapesDataModule",
    "ShapesWorld",
    "Tracks",
    "VideoFolder",
    "VideoFolderDataModule",
    "sample_generator",
]

if TYPE_CHECKING:
    from .datamodule import ShapesDataModule, VideoFolderDataModule
    from .sampling import EpochSampler, sample_generator
    from .shapes import ShapesWorld, Tracks
    from .video_folder import VideoFolder


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vidiff.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
