"""Sampling weights in one safetensors file: the (EMA) network and the settings that rebuild the model.

A Lightning checkpoint carries the optimizer, the raw and the EMA weights and the RNG state: what exact resume
needs, and about 4x what sampling needs. ``vidiff export`` writes the weights sampling uses (the EMA net, or the
raw one) into a safetensors file whose metadata holds, as JSON, the model's and the data module's
hyperparameters and the training step. :func:`read_checkpoint` reads either kind into the Lightning layout, so
every loader (:func:`vidiff.lit.load_model`, ``vidiff sample / evaluate --ckpt``) accepts both. Nothing in a
weights file can run code: safetensors holds tensors and strings only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from vidiff.io.atomic import atomic_path
from vidiff.io.errors import reading

#: ``format`` metadata value of files written by :func:`export_weights`.
FORMAT = "vidiff-weights-1"
#: Constructor arguments that only matter for training: left out of weights files and not rebuilt by load_model.
TRAINING_ONLY = ("optimizer", "lr_scheduler", "init_weights")


def is_weights_file(path: str | os.PathLike) -> bool:
    """True for a ``.safetensors`` path (a vidiff weights file, or not: :func:`read_checkpoint` checks)."""
    return str(path).endswith(".safetensors")


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A Lightning checkpoint or a vidiff weights file as ``{"state_dict", "hyper_parameters",
    "datamodule_hyper_parameters", "global_step"}`` (weights files: EMA already applied, ``ema_decay`` None).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a ``.safetensors`` file that is not a vidiff weights file.
        vidiff.io.errors.FileFault: an unsafe pickle (it names Python objects to import) or a corrupt file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {str(path)!r}")
    if not is_weights_file(path):
        with reading(path):
            return torch.load(path, map_location="cpu", weights_only=True)
    from safetensors import safe_open
    from safetensors.torch import load_file

    with reading(path), safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise ValueError(
            f"{path} is a safetensors file but not vidiff weights (metadata format {meta.get('format')!r}, expected"
            f" {FORMAT!r}); write one with `vidiff export --ckpt RUN/checkpoints/last.ckpt --out {path.name}`"
        )
    hparams = json.loads(meta["hyper_parameters"])
    hparams["ema_decay"] = None  # the file holds the averaged weights themselves
    with reading(path):
        state = load_file(str(path))
    return {
        "state_dict": state,
        "hyper_parameters": hparams,
        "datamodule_hyper_parameters": json.loads(meta.get("datamodule_hyper_parameters", "null")),
        "global_step": int(meta.get("global_step", -1)),
    }


def export_weights(ckpt_path: str | os.PathLike, out: str | os.PathLike, use_ema: bool = True) -> Path:
    """Write the sampling weights of a ``vidiff fit`` checkpoint to ``out`` (``.safetensors``), atomically.

    Args:
        ckpt_path: a Lightning checkpoint of a :class:`~vidiff.lit.VideoDiffusion`.
        out: the weights file to write (its folder must exist).
        use_ema: export the EMA weights (default), else the raw trained ones.

    Returns:
        ``out`` as a Path.

    Raises:
        ValueError: the checkpoint has no vidiff hyperparameters, or no EMA state while ``use_ema``.
    """
    from safetensors.torch import save_file

    out = Path(out)
    if not is_weights_file(out):
        raise ValueError(f"--out: a weights file ends in .safetensors, got {str(out)!r}")
    ckpt = read_checkpoint(ckpt_path)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "net" not in (ckpt.get("hyper_parameters") or {}):
        raise ValueError(f"--ckpt: {ckpt_path} is not a checkpoint of a vidiff model (no state_dict / net config)")
    state = ckpt["state_dict"]
    prefix = "ema.shadow." if use_ema else ""
    # raw weights of everything, then the averaged ones over the parts EMA covers (net, a trained text encoder);
    # frozen parts (autoencoder, a frozen text encoder) are not averaged and keep their raw weights
    weights = {key: value for key, value in state.items() if not key.startswith("ema.")}
    if use_ema:
        weights.update({key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)})
    if use_ema and not any(k.startswith("ema.shadow.") for k in state):
        raise ValueError(f"--ckpt: {ckpt_path} holds no EMA weights; export the raw ones with --raw")
    hparams = {k: v for k, v in dict(ckpt["hyper_parameters"]).items() if k not in TRAINING_ONLY}
    hparams.pop("_instantiator", None)
    meta = {
        "format": FORMAT,
        "hyper_parameters": json.dumps(_plain(hparams)),
        "datamodule_hyper_parameters": json.dumps(_plain(ckpt.get("datamodule_hyper_parameters"))),
        "global_step": str(int(ckpt.get("global_step", -1))),
    }
    tensors = {k: v.detach().contiguous() for k, v in weights.items()}
    with atomic_path(out) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return out


def _plain(value: Any) -> Any:
    """JSON-ready copy of hyperparameters (tuples to lists; anything else that is not plain data to its str)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
