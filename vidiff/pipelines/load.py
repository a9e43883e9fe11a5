"""Loading a trained model for sampling, without Lightning: a checkpoint or weights file -> :class:`VideoModel`.

The file is read and checked by :func:`vidiff.io.checkpoint.read_model`, as for ``vidiff.lit.load_model``
(``torch.load(weights_only=True)`` or safetensors: no code from the file runs; the classes its hyperparameters
name are checked against the allow-list before anything is imported), and the parts a
:class:`vidiff.lit.VideoDiffusion` holds are rebuilt from them: the net, the noise schedule, the frozen
autoencoder and the text encoder, with the EMA weights (the ones sampling uses) in the net and a trained text
encoder. Errors name the Python argument (``ckpt: ...``); the CLI rewords
them to its option.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidiff.diffusion import PREDICTIONS, NoiseSchedule
from vidiff.io.checkpoint import build_module, read_model, sampling_state
from vidiff.io.errors import FileFault
from vidiff.pipelines.model import VideoModel

#: the parts of a VideoDiffusion's state dict (``ema.*`` holds the averaged copies of net / text encoder).
PARTS = ("net", "text_encoder", "autoencoder")


def frozen_autoencoder(path: str | os.PathLike, channels: int) -> nn.Module:
    """The frozen autoencoder of a latent model (``autoencoder_ckpt``), checked against the pixel ``channels``."""
    from vidiff.nn.autoencoder import load_autoencoder

    autoencoder = load_autoencoder(path).eval().requires_grad_(False)
    if autoencoder.in_channels != channels:
        raise ValueError(
            f"autoencoder_ckpt: {path} encodes {autoencoder.in_channels}-channel frames but channels={channels}"
        )
    return autoencoder


def load_sampling_model(
    ckpt: str | os.PathLike, device: str | torch.device = "cpu", *, use_ema: bool = True, **overrides: Any
) -> VideoModel:
    """The :class:`VideoModel` of a ``vidiff fit`` checkpoint or a ``vidiff export`` weights file.

    Args:
        ckpt: the file (e.g. ``runs/demo/checkpoints/last.ckpt`` or ``vidiff/assets/shapes_reference.safetensors``).
        device: where to put the parts.
        use_ema: sample with the EMA weights (the default); False keeps the raw trained ones.
        **overrides: stored constructor arguments to replace (e.g. ``autoencoder_ckpt`` when that file moved).

    Raises:
        FileNotFoundError: no file at ``ckpt``.
        ValueError: the file is unreadable, unsafe, or holds no usable vidiff model; the message names ``ckpt``.
    """
    path = Path(ckpt)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt: no checkpoint file at {str(ckpt)!r}")
    try:
        model = _build(path, use_ema, overrides)
    except FileFault as err:  # already one line naming the file; name the argument too
        raise type(err)(f"ckpt: {err}") from err
    except (ValueError, RuntimeError, KeyError, TypeError) as err:
        raise ValueError(f"ckpt: {ckpt} does not hold a usable vidiff model ({err})") from err
    except Exception as err:  # unpickling garbage raises assorted types
        raise ValueError(f"ckpt: cannot read {ckpt} as a checkpoint ({type(err).__name__}: {err})") from err
    for part in (model.net, model.autoencoder, model.text_encoder):
        if isinstance(part, nn.Module):
            part.eval().requires_grad_(False).to(device)
    return model


def _build(path: Path, use_ema: bool, overrides: dict[str, Any]) -> VideoModel:
    from vidiff.nn.text import TextEncoder

    stored = read_model(path, overrides=overrides)  # the VideoDiffusion (sub)class is not needed
    hparams = stored.hparams
    prediction = hparams.get("prediction", "eps")
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction: expected one of {list(PREDICTIONS)}, got {prediction!r}")
    stored.check_ema(use_ema)
    channels, size = int(hparams.get("channels", 3)), int(hparams.get("image_size", 32))
    parts: dict[str, nn.Module | None] = {
        "net": build_module(hparams["net"], "net"),
        "text_encoder": None if hparams.get("text_encoder") is None
        else build_module(hparams["text_encoder"], "text_encoder", TextEncoder),
        "autoencoder": None if hparams.get("autoencoder_ckpt") is None
        else frozen_autoencoder(hparams["autoencoder_ckpt"], channels),
    }
    weights = sampling_state(stored.state, use_ema and stored.has_ema)
    unknown = sorted({key.split(".")[0] for key in weights} - {p for p, m in parts.items() if m is not None})
    if unknown:
        raise ValueError(f"ckpt_path: {path} holds weights of parts {unknown} that a vidiff video model lacks")
    for name, module in parts.items():
        if module is not None:
            module.load_state_dict({k[len(name) + 1:]: v for k, v in weights.items() if k.startswith(name + ".")},
                                   strict=True)
    autoencoder = parts["autoencoder"]
    frame_shape = (channels, size, size) if autoencoder is None else tuple(autoencoder.latent_shape(size, size))
    schedule = NoiseSchedule(hparams.get("schedule", "linear"), int(hparams.get("num_timesteps", 1000)),
                             zero_terminal_snr=bool(hparams.get("zero_terminal_snr", False)))
    return VideoModel(
        net=parts["net"], schedule=schedule, prediction=prediction, frame_shape=tuple(int(v) for v in frame_shape),
        image_shape=(channels, size, size), autoencoder=autoencoder, text_encoder=parts["text_encoder"],
        max_frames=hparams.get("max_frames", 8), global_step=stored.checkpoint.get("global_step"),
    )
