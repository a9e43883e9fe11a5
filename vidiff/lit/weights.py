"""Sampling weights in one safetensors file: the (EMA) network and the settings that rebuild the model.

A Lightning checkpoint carries the optimizer, the raw and the EMA weights and the RNG state: what exact resume
needs, and about 4x what sampling needs. ``vidiff export`` writes the weights sampling uses (the EMA net, or the
raw one) into a safetensors file whose metadata holds, as JSON, the model's and the data module's
hyperparameters and the training step. :func:`vidiff.io.checkpoint.read_checkpoint` reads either kind into the Lightning layout, so
every loader (:func:`vidiff.lit.load_model`, ``vidiff sample / evaluate --ckpt``) accepts both. Nothing in a
weights file can run code: safetensors holds tensors and strings only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vidiff.io.atomic import atomic_path
from vidiff.io.checkpoint import FORMAT, TRAINING_ONLY, is_weights_file, read_checkpoint, sampling_state

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
    weights = sampling_state(state, use_ema)
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
