"""Text-to-video by inflation (see docs/text_to_video.md); text-to-image is :class:`vidiff.pipelines.TextToImage`.

- :func:`init_from_image_model` / :class:`InitFromImageModel`: a text-to-video model from a text-to-image
  checkpoint, temporal layers at identity, optionally training the temporal layers only.
- :class:`FrozenBuiltinTextEncoder`: the built-in text encoder, frozen (for temporal-only training).

Names are imported lazily, so ``import vidiff.generate`` does not import Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FrozenBuiltinTextEncoder": "vidiff.generate.text",
    "InitFromImageModel": "vidiff.generate.inflate",
    "init_from_image_model": "vidiff.generate.inflate",
    "read_image_model": "vidiff.generate.inflate",
}

__all__ = ["FrozenBuiltinTextEncoder", "InitFromImageModel", "init_from_image_model", "read_image_model"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vidiff.generate' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
