"""Inflation: a video ``SpaceTimeUNet`` from an image U-Net's weights (Make-A-Video / AnimateDiff style).

:func:`copy_spatial` is the one copy of image weights into a video U-Net's spatial layers: :func:`inflate`
builds a video U-Net from an image one with it, and :func:`vidiff.lit.inflate.init_from_image_model` fills a
configured video model from a text-to-image checkpoint with it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from vidiff.nn.unet import SpaceTimeUNet, is_temporal_name

logger = logging.getLogger(__name__)

_SHOWN = 5


def copy_spatial(video: nn.Module, image: Mapping[str, Tensor]) -> int:
    """Copy the image U-Net's weights ``image`` (a state dict) into ``video``'s spatial (non-temporal) layers.

    The temporal layers of ``video`` are left as they are (zero-initialised output projections: the identity).

    Returns:
        How many tensors were copied.

    Raises:
        ValueError: the layouts differ; the message lists the first missing, unexpected and mismatched keys.
    """
    own = video.state_dict()
    spatial = {k: v for k, v in own.items() if not is_temporal_name(k)}
    missing = [k for k in spatial if k not in image]
    unexpected = [k for k in image if k not in own and not is_temporal_name(k)]
    mismatched = [f"{k}: image {tuple(image[k].shape)} vs video {tuple(v.shape)}"
                  for k, v in spatial.items() if k in image and image[k].shape != v.shape]
    if missing or unexpected or mismatched:
        raise ValueError(f"missing {missing[:_SHOWN]}, unexpected {unexpected[:_SHOWN]}, "
                         f"mismatched {mismatched[:_SHOWN]}")
    video.load_state_dict({k: image[k] for k in spatial}, strict=False)
    return len(spatial)


def inflate(image_unet: SpaceTimeUNet, **overrides: Any) -> SpaceTimeUNet:
    """Build a video U-Net whose spatial layers are a copy of ``image_unet``'s.

    The new model has the image model's configuration with ``temporal=True`` and ``observed_channel=True``
    (both overridable, as any other constructor argument in ``overrides``, e.g. ``temporal_attention_resolutions``).
    Its temporal layers and ``observed_in`` are new and start as no-ops (zero-init output projections), so at
    initialisation its output on every frame equals ``image_unet``'s output on that frame.

    Args:
        image_unet: The image U-Net (typically ``temporal=False``, e.g. Stable Diffusion weights).
        **overrides: Constructor arguments to change.

    Returns:
        A new ``SpaceTimeUNet`` on the image model's device and dtype.

    Raises:
        ValueError: ``overrides`` names an unknown argument, or changes the spatial layout so that the image
            weights no longer fit.
    """
    unknown = sorted(set(overrides) - set(image_unet.config))
    if unknown:
        raise ValueError(f"unknown SpaceTimeUNet arguments in overrides: {unknown}; valid: {sorted(image_unet.config)}")
    config = {**image_unet.config, "temporal": True, "observed_channel": True, **overrides}
    video = SpaceTimeUNet(**config)
    param = next(image_unet.parameters())
    video.to(device=param.device, dtype=param.dtype)
    image_state = image_unet.state_dict()
    try:
        copy_spatial(video, {k: v for k, v in image_state.items() if not is_temporal_name(k)})
    except ValueError as err:
        raise ValueError(f"overrides change the spatial layers so the image weights do not fit: {err}") from err
    # Carry over video layers the image model already had (e.g. re-inflating a video model).
    extra = {k: v for k, v in image_state.items() if is_temporal_name(k) and k in video.state_dict()}
    if extra:
        video.load_state_dict(extra, strict=False)
    logger.info("inflated U-Net: %d new parameters", sum(p.numel() for p in video.temporal_parameters()))
    return video
