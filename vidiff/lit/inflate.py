"""Text-to-video by inflation: start a video model from a trained text-to-image checkpoint.

The video model (``SpaceTimeUNet`` with ``temporal: true``) is configured in YAML like any ``VideoDiffusion``;
its spatial layers must have the image model's layout. :func:`init_from_image_model` copies the image model's
(EMA) spatial weights and text encoder into it; the temporal layers and the observed-frame input keep their
zero-initialised output projections, so at this point the video model computes, frame by frame, exactly what
the image model computes (Make-A-Video, Singer et al. 2022; Video LDM, Blattmann et al. 2023; AnimateDiff,
Guo et al. 2024). With ``train_only="temporal"`` the spatial layers are frozen and only the temporal ones train.

In a ``vidiff fit`` config this runs as a callback at the start of fitting (before the optimizer is built, so
frozen parameters are not in it; a resumed run restores its own weights afterwards)::

    trainer:
      callbacks:
        - class_path: vidiff.lit.inflate.InitFromImageModel
          init_args: {ckpt_path: runs/shapes_t2i_tiny/checkpoints/last.ckpt, train_only: temporal}
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from vidiff.io.checkpoint import model_hparams, read_checkpoint
from vidiff.nn.inflate import copy_spatial

log = logging.getLogger(__name__)

TRAIN_ONLY = ("temporal", "all")
#: Hyperparameters that must agree between the image and the video model (same diffusion process).
SAME_PROCESS = ("schedule", "num_timesteps", "zero_terminal_snr", "prediction", "channels")


def _sub_state(state: dict[str, Tensor], prefixes: tuple[str, ...]) -> dict[str, Tensor] | None:
    """The entries under the first prefix that has any, with the prefix removed."""
    for prefix in prefixes:
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if sub:
            return sub
    return None


def read_image_model(ckpt_path: str | os.PathLike, use_ema: bool = True) -> dict[str, Any]:
    """The weights of a text-to-image checkpoint: ``{"net": state, "text_encoder": state or None, "hparams": ...}``.

    Args:
        ckpt_path: a ``VideoDiffusion`` checkpoint written by ``vidiff fit`` or ``vidiff export``
            (:func:`vidiff.io.checkpoint.read_checkpoint`).
        use_ema: take the EMA weights (``ema.shadow.*``) where the checkpoint has them.

    Raises:
        FileNotFoundError: no file at ``ckpt_path``.
        ValueError: not a ``VideoDiffusion`` checkpoint.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path: no text-to-image checkpoint at {str(path)!r}")
    ckpt = read_checkpoint(path)
    hparams = model_hparams(ckpt, path)
    state = ckpt["state_dict"]
    ema = ("ema.shadow.",) if use_ema else ()
    net = _sub_state(state, tuple(p + "net." for p in ema) + ("net.",))
    if net is None:
        raise ValueError(f"ckpt_path: {path} holds no 'net.*' weights; is it a vidiff VideoDiffusion checkpoint?")
    text = _sub_state(state, tuple(p + "text_encoder." for p in ema) + ("text_encoder.",))
    return {"net": net, "text_encoder": text, "hparams": hparams}


def _check_process(module: Any, hparams: dict[str, Any], path: Any) -> None:
    for key in SAME_PROCESS:
        if key in hparams and module.hparams.get(key, hparams[key]) != hparams[key]:
            raise ValueError(
                f"ckpt_path: the image model {path} has {key}={hparams[key]!r} but the video model "
                f"{key}={module.hparams[key]!r}; inflation keeps the diffusion process, so they must agree"
            )
    image_ae, video_ae = hparams.get("autoencoder_ckpt"), module.hparams.get("autoencoder_ckpt")
    if image_ae != video_ae:
        log.warning("the image model %s used autoencoder_ckpt=%r, the video model uses %r: they must be the same "
                    "autoencoder", path, image_ae, video_ae)


@torch.no_grad()
def init_from_image_model(
    module: Any, ckpt_path: str | os.PathLike, train_only: str = "temporal", use_ema: bool = True
) -> None:
    """Initialise a ``VideoDiffusion`` video model from a text-to-image checkpoint (in place).

    Copies the spatial U-Net weights and the text encoder; temporal layers keep their (identity) initialisation;
    the EMA copy is reset to the new weights. With ``train_only="temporal"`` the spatial layers are frozen.

    Args:
        module: the video ``VideoDiffusion`` (``net`` a ``SpaceTimeUNet`` with temporal layers).
        ckpt_path: the text-to-image checkpoint.
        train_only: ``"temporal"`` (spatial layers frozen) or ``"all"``.
        use_ema: copy the image model's EMA weights (default) rather than its raw ones.

    Raises:
        ValueError: ``train_only`` unknown; the diffusion processes differ; the U-Nets' spatial layers do not
            match; text encoders do not match; ``train_only="temporal"`` with a trainable text encoder.
    """
    if train_only not in TRAIN_ONLY:
        raise ValueError(f"train_only: expected one of {list(TRAIN_ONLY)}, got {train_only!r}")
    image = read_image_model(ckpt_path, use_ema)
    _check_process(module, image["hparams"], ckpt_path)
    try:
        copied = copy_spatial(module.net, image["net"])
    except ValueError as err:
        raise ValueError(
            f"ckpt_path: the image U-Net of {ckpt_path} does not fit the video U-Net's spatial layers (same "
            f"net.init_args except temporal/observed_channel expected): {err}"
        ) from err
    text = module.text_encoder
    if text is not None:
        if image["text_encoder"] is None:
            raise ValueError(f"ckpt_path: the image model {ckpt_path} has no text encoder but the video model has one")
        try:
            text.load_state_dict(image["text_encoder"], strict=True)
        except RuntimeError as err:
            raise ValueError(f"text_encoder: does not match the image model's text encoder ({err})") from err
        if train_only == "temporal" and any(p.requires_grad for p in text.parameters()):
            raise ValueError(
                "text_encoder: train_only='temporal' keeps the image model's text encoder, so it must be frozen "
                "in the video config (vidiff.nn.text.BuiltinTextEncoder with frozen: true, or a frozen "
                "pretrained / CLIP encoder); use train_only='all' to train it too"
            )
    if train_only == "temporal":
        module.net.freeze_spatial(True)
    if module.ema is not None:
        module.ema.shadow.load_state_dict(module._trained().state_dict())
    trainable = sum(p.numel() for p in module.net.parameters() if p.requires_grad)
    log.info("initialised the video model from %s: %d spatial tensors copied, temporal layers at identity; "
             "training %s (%d U-Net parameters)", ckpt_path, copied, train_only, trainable)


class InitFromImageModel(pl.Callback):
    """Lightning callback running :func:`init_from_image_model` when fitting starts (see the module docstring).

    Args:
        ckpt_path: the text-to-image checkpoint.
        train_only: ``"temporal"`` (spatial layers frozen, as Video LDM / AnimateDiff) or ``"all"``.
        use_ema: copy the image model's EMA weights.
    """

    def __init__(self, ckpt_path: str, train_only: str = "temporal", use_ema: bool = True) -> None:
        if train_only not in TRAIN_ONLY:
            raise ValueError(f"train_only: expected one of {list(TRAIN_ONLY)}, got {train_only!r}")
        self.ckpt_path, self.train_only, self.use_ema = ckpt_path, train_only, use_ema

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            init_from_image_model(pl_module, self.ckpt_path, self.train_only, self.use_ema)
