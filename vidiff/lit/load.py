"""Load a trained :class:`VideoDiffusion` for inference from a Lightning checkpoint."""

from __future__ import annotations

import inspect
import logging
import os
from pathlib import Path
from typing import Any

import torch

from vidiff.io.checkpoint import import_class, read_model
from vidiff.lit.video_diffusion import VideoDiffusion

log = logging.getLogger(__name__)



def load_model(
    ckpt_path: str | os.PathLike,
    device: str | torch.device = "cpu",
    use_ema: bool = True,
    **overrides: Any,
) -> VideoDiffusion:
    """Rebuild a :class:`VideoDiffusion` from a checkpoint's hyperparameters and load its weights.

    The file is a Lightning checkpoint, read with ``torch.load(weights_only=True)``, or a weights file written by
    ``vidiff export`` (``.safetensors``), read and checked by :func:`vidiff.io.checkpoint.read_model` as for
    :func:`vidiff.pipelines.load_sampling_model`; no code from the file runs, and the classes
    its hyperparameters name must come from ``vidiff``, ``torch`` or ``$VIDIFF_ALLOWED_MODULES`` (checked before
    anything is imported; :func:`vidiff.io.checkpoint.check_checkpoint_classes`). The model comes back in
    eval mode, without gradients, with the EMA weights copied into ``.net`` (and a trained text encoder), so
    ``model.net``, ``model.schedule``, ``model.prediction``, ``model.autoencoder``, ``model.text_encoder``,
    ``model.image_size``, ``model.channels`` and ``model.max_frames`` are ready for sampling.

    Args:
        ckpt_path: a checkpoint written by ``vidiff fit`` (e.g. ``runs/shapes_tiny/checkpoints/last.ckpt``) or a
            weights file (e.g. the reference model ``vidiff/assets/shapes_reference.safetensors``).
        device: where to put the model.
        use_ema: copy the EMA weights into the net (the default); False keeps the raw trained weights.
        **overrides: constructor arguments that replace the stored ones (e.g. ``autoencoder_ckpt`` when the
            autoencoder file moved).

    Raises:
        FileNotFoundError: no file at ``ckpt_path``.
        ValueError: the checkpoint is not a vidiff ``VideoDiffusion`` checkpoint (no hyperparameters / weights), or
            it names a class outside the allowed modules (:func:`vidiff.io.checkpoint.check_checkpoint_classes`).
        RuntimeError: ``use_ema`` but the checkpoint holds no EMA state.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path: no checkpoint file at {str(path)!r}")
    stored = read_model(path, overrides=overrides)  # as pipelines.load_sampling_model
    hparams, class_path = stored.hparams, stored.class_path
    cls: type = VideoDiffusion
    if class_path is not None:
        cls = import_class(class_path, "checkpoint model")
        if not (isinstance(cls, type) and issubclass(cls, VideoDiffusion)):
            raise ValueError(f"ckpt_path: {path} holds a {class_path}, not a vidiff VideoDiffusion")
    accepted = inspect.signature(cls.__init__).parameters
    unknown = sorted(k for k in hparams if k not in accepted)
    if unknown:
        log.warning("checkpoint %s: ignoring unknown hyperparameters %s", path, unknown)
    model = cls(**{k: v for k, v in hparams.items() if k in accepted})
    stored.check_ema(use_ema)
    state = stored.state
    if not use_ema:
        model.ema = None
        state = {k: v for k, v in state.items() if not k.startswith("ema.")}
    model.load_state_dict(state, strict=True)
    if model.ema is not None:
        model.ema.copy_to(model._trained())
    return model.eval().requires_grad_(False).to(device)
