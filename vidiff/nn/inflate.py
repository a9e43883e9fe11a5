"""Inflation: a video ``SpaceTimeUNet`` from an image U-Net's weights (Make-A-Video / AnimateDiff style)."""

from __future__ import annotations

import logging
from typing import Any

from vidiff.nn.unet import SpaceTimeUNet, is_temporal_name

logger = logging.getLogger(__name__)


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
    state = {k: v for k, v in image_unet.state_dict().items() if not is_temporal_name(k)}
    try:
        missing, unexpected = video.load_state_dict(state, strict=False)
    except RuntimeError as err:  # size mismatch
        raise ValueError(f"overrides change the spatial layers so the image weights do not fit: {err}") from err
    not_new = [k for k in missing if not is_temporal_name(k)]
    if not_new or unexpected:
        raise ValueError(
            f"overrides change the spatial layers: missing {not_new[:5]}, unexpected {list(unexpected)[:5]}"
        )
    # Carry over video layers the image model already had (e.g. re-inflating a video model).
    extra = {k: v for k, v in image_unet.state_dict().items() if is_temporal_name(k) and k in video.state_dict()}
    if extra:
        video.load_state_dict(extra, strict=False)
    logger.info("inflated U-Net: %d new parameters", sum(p.numel() for p in video.temporal_parameters()))
    return video
