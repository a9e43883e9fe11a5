"""Reading trained models safely: the class allow-list, ``{class_path, init_args}`` specs, checkpoint files.

A checkpoint chooses what to import only within an allow-list: :func:`check_checkpoint_classes` refuses, before
anything is imported, every ``class_path`` in a checkpoint's hyperparameters outside the modules ``vidiff`` and
``torch``, plus those named in the environment variable ``VIDIFF_ALLOWED_MODULES`` (comma-separated module
names, e.g. ``mylab.nets,other``) or passed to :func:`allow_modules`. YAML configs are the user's own and are not
restricted.

:func:`read_checkpoint` reads a Lightning checkpoint (``torch.load(weights_only=True)``) or a weights file written
by ``vidiff export`` (safetensors: the (EMA) network and the settings as JSON metadata) into the Lightning layout;
:func:`model_hparams` gives the constructor arguments that rebuild the model, :func:`sampling_state` the weights
sampling uses. Every loader (``vidiff.pipelines.load_sampling_model``, ``vidiff.lit.load_model``, ``vidiff
export``) goes through these; nothing here imports Lightning.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidiff.io.errors import reading

#: Modules (and their submodules) whose classes a checkpoint may name.
ALLOWED_MODULES: list[str] = ["vidiff", "torch"]
ALLOWED_MODULES_ENV = "VIDIFF_ALLOWED_MODULES"


def allow_modules(*names: str) -> None:
    """Let checkpoints name classes of these modules (and their submodules), e.g. ``allow_modules("mylab")``."""
    for name in names:
        name = name.strip().rstrip(".")
        if name and name not in ALLOWED_MODULES:
            ALLOWED_MODULES.append(name)


def allowed_modules() -> list[str]:
    """:data:`ALLOWED_MODULES` plus the names in ``$VIDIFF_ALLOWED_MODULES``."""
    extra = os.environ.get(ALLOWED_MODULES_ENV, "").replace(",", " ").split()
    return [*ALLOWED_MODULES, *(n.rstrip(".") for n in extra if n.rstrip(".") not in ALLOWED_MODULES)]


def check_allowed(class_path: Any, argument: str, source: str = "the checkpoint") -> None:
    """Refuse (without importing anything) a ``class_path`` outside :func:`allowed_modules`."""
    if not isinstance(class_path, str) or "." not in class_path:
        raise ValueError(f"{argument}.class_path: expected a dotted 'module.Class' path, got {class_path!r}")
    module = class_path.rsplit(".", 1)[0]
    allowed = allowed_modules()
    if not any(module == name or module.startswith(name + ".") for name in allowed):
        top = module.split(".")[0]
        raise ValueError(
            f"{argument}.class_path: {source} names {class_path!r}, outside the modules checkpoints may import "
            f"({', '.join(allowed)}); if you trust it, allow it with {ALLOWED_MODULES_ENV}={top} (comma-separated) "
            f"or vidiff.io.checkpoint.allow_modules({top!r})"
        )


def check_checkpoint_classes(hparams: Mapping[str, Any], source: str) -> None:
    """Check every ``class_path`` (and ``_class_path``) in a checkpoint's hyperparameters with :func:`check_allowed`."""

    def walk(value: Any, where: str) -> None:
        if isinstance(value, Mapping):
            for key in ("class_path", "_class_path"):
                if key in value:
                    check_allowed(value[key], where or "checkpoint model", source)
            for key, item in value.items():
                walk(item, f"{where}.{key}" if where else str(key))
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]")

    walk(hparams, "")


def import_class(class_path: str, argument: str) -> type:
    """Import ``"package.module.Class"``; errors name ``argument``."""
    if not isinstance(class_path, str) or "." not in class_path:
        raise ValueError(f"{argument}.class_path: expected a dotted 'module.Class' path, got {class_path!r}")
    module_name, name = class_path.rsplit(".", 1)
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{argument}.class_path: cannot import {class_path!r} ({err})") from err


def split_spec(spec: Mapping[str, Any], argument: str) -> tuple[str, dict[str, Any]]:
    unknown = set(spec) - {"class_path", "init_args", "dict_kwargs"}
    if "class_path" not in spec or unknown:
        raise ValueError(
            f"{argument}: expected a mapping with 'class_path' and optional 'init_args', got keys {sorted(spec)}"
        )
    return spec["class_path"], {**dict(spec.get("init_args") or {}), **dict(spec.get("dict_kwargs") or {})}


#: Classes that moved, by the ``class_path`` that checkpoints written before still hold: the new class path and
#: the constructor arguments that give the old class.
MOVED_CLASSES: dict[str, tuple[str, dict[str, Any]]] = {
    "vidiff.generate.text.FrozenBuiltinTextEncoder": ("vidiff.nn.text.BuiltinTextEncoder", {"frozen": True}),
    "vidiff.generate.FrozenBuiltinTextEncoder": ("vidiff.nn.text.BuiltinTextEncoder", {"frozen": True}),
}


def build_module(spec: nn.Module | Mapping[str, Any], argument: str, base: type = nn.Module) -> nn.Module:
    """``spec`` itself if it is a module, else ``Class(**init_args)`` from a ``{class_path, init_args}`` mapping.

    Raises:
        ValueError: the mapping is malformed, the class cannot be imported or is not a subclass of ``base``.
    """
    if isinstance(spec, nn.Module):
        return spec
    if not isinstance(spec, Mapping):
        raise TypeError(
            f"{argument}: expected a {base.__name__} or a {{class_path, init_args}} mapping, got {spec!r}"
        )
    class_path, init_args = split_spec(spec, argument)
    if class_path in MOVED_CLASSES:
        class_path, fixed = MOVED_CLASSES[class_path]
        init_args = {**init_args, **fixed}
    cls = import_class(class_path, argument)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        msg = f"{argument}.class_path: expected a subclass of {base.__name__}, got {class_path!r}"
        raise ValueError(msg)  # noqa: TRY004 (a bad config value, not a bad Python type)
    return cls(**init_args)


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


def model_hparams(ckpt: Any, path: str | os.PathLike, argument: str = "ckpt_path") -> dict[str, Any]:
    """The constructor arguments stored in a checkpoint, without the training-only ones; every ``class_path`` in
    them checked against the allow-list (before anything is imported). Errors name ``argument``."""
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ValueError(f"{argument}: {path} is not a Lightning checkpoint (no 'state_dict')")
    hparams = dict(ckpt.get("hyper_parameters") or {})
    hparams.pop("_instantiator", None)
    for key in TRAINING_ONLY:
        hparams.pop(key, None)
    check_checkpoint_classes(hparams, f"checkpoint {path}")
    return hparams


def sampling_state(state: Mapping[str, torch.Tensor], use_ema: bool = True) -> dict[str, torch.Tensor]:
    """The weights sampling uses: the raw weights of every part, then, with ``use_ema``, the averaged ones
    (``ema.shadow.*``) over the parts EMA covers (the net, a trained text encoder); frozen parts (autoencoder, a
    frozen text encoder) are not averaged and keep their raw weights."""
    weights = {key: value for key, value in state.items() if not key.startswith("ema.")}
    if use_ema:
        prefix = "ema.shadow."
        weights.update({key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)})
    return weights
