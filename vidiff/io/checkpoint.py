"""Reading trained models safely: the class allow-list, ``{class_path, init_args}`` specs, checkpoint files.

A checkpoint chooses what to import only within an allow-list: :func:`check_checkpoint_classes` refuses, before
anything is imported, every ``class_path`` in a checkpoint's hyperparameters outside the modules ``vidiff`` and
``torch``, plus those named in the environment variable ``VIDIFF_ALLOWED_MODULES`` (comma-separated module
names, e.g. ``mylab.nets,other``) or passed to :func:`allow_modules`. YAML configs are the user's own and are not
restricted.

Every file of tensors is opened here: :func:`load_torch_file` (``torch.load(weights_only=True)``, unsafe or
corrupt files as one line), :func:`read_state_dict` (a flat tensor dict: Stable Diffusion files, I3D weights)
and :func:`read_checkpoint`, which reads a Lightning checkpoint or a weights file written by ``vidiff export``
(safetensors: the (EMA) network and the settings as JSON metadata) into the Lightning layout.
:func:`model_hparams` gives the constructor arguments that rebuild the model, :func:`sampling_state` the weights
sampling uses, and :func:`read_model` all of it checked once (:class:`StoredModel`): both rebuilds of a
trained model start there, the sampling parts (``vidiff.pipelines.load_sampling_model``) and the
LightningModule (``vidiff.lit.load_model``). Nothing here imports Lightning.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
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


#: Classes that moved, by the ``class_path`` that checkpoints written before still hold: the new class path
#: and the constructor arguments that give the old class.
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


def load_torch_file(path: str | os.PathLike, map_location: Any = "cpu", mmap: bool = False) -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain data only, no code runs.

    Raises:
        vidiff.io.errors.FileFault: an unsafe pickle (it names Python objects to import) or a corrupt file.
    """
    with reading(path):
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)


def read_state_dict(path: str | os.PathLike, argument: str = "path") -> dict[str, torch.Tensor]:
    """The flat tensor dict of a ``.safetensors`` file or a ``.ckpt`` / ``.pt`` (``state_dict`` nesting
    undone).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file holds something other than a dict of tensors (errors name ``argument``).
        vidiff.io.errors.FileFault: an unsafe or corrupt file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{argument}: no checkpoint file at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        with reading(path):
            return load_file(str(path))
    ckpt = load_torch_file(path)
    while isinstance(ckpt, dict) and isinstance(ckpt.get("state_dict"), dict):
        ckpt = ckpt["state_dict"]
    if not isinstance(ckpt, dict) or not all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise ValueError(f"{argument}: expected a state dict of tensors in {path}, got {type(ckpt).__name__}")
    return ckpt


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
        return load_torch_file(path)
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


@dataclass
class StoredModel:
    """A trained model as a file stores it, read and checked by :func:`read_model`.

    Attributes:
        checkpoint: the file in the Lightning layout (:func:`read_checkpoint`).
        hparams: the constructor arguments (overrides applied; training-only ones and ``_class_path`` left
            out).
        class_path: the ``VideoDiffusion`` (sub)class that wrote it, or None.
        has_ema: the file holds EMA weights (``ema.*``).
    """

    checkpoint: dict[str, Any]
    hparams: dict[str, Any]
    class_path: str | None
    has_ema: bool

    @property
    def state(self) -> dict[str, torch.Tensor]:
        return self.checkpoint["state_dict"]

    def check_ema(self, use_ema: bool) -> None:
        """Refuse to sample a model trained with EMA from its raw weights when ``use_ema`` asks for the
        averaged ones and the file holds none.

        Raises:
            RuntimeError: ``use_ema`` but no ``ema.*`` weights for a model with ``ema_decay``.
        """
        decay = self.hparams.get("ema_decay", 0.999)
        if use_ema and decay is not None and not self.has_ema:
            raise RuntimeError(
                f"checkpoint: has no EMA state (no 'ema.*' weights) but the model has ema_decay={decay}; "
                "refusing to fall back silently to the raw weights. Load it with use_ema=False if it was "
                "trained without EMA."
            )


def read_model(
    path: str | os.PathLike, *, overrides: Mapping[str, Any] | None = None, argument: str = "ckpt_path"
) -> StoredModel:
    """Read a checkpoint or weights file of a ``VideoDiffusion`` and check what rebuilding it needs.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a class outside the allow-list, or no ``net`` config (errors name ``argument``).
    """
    ckpt = read_checkpoint(path)
    hparams = model_hparams(ckpt, path, argument)  # every class it names checked before anything is imported
    class_path = hparams.pop("_class_path", None)
    hparams.update(overrides or {})
    if "net" not in hparams:
        raise ValueError(
            f"{argument}: {path} stores no 'net' config in its hyper_parameters (the net was passed as an "
            "object without .config); pass net=... as an override"
        )
    has_ema = any(key.startswith("ema.") for key in ckpt["state_dict"])
    return StoredModel(ckpt, hparams, class_path, has_ema)


def sampling_state(state: Mapping[str, torch.Tensor], use_ema: bool = True) -> dict[str, torch.Tensor]:
    """The weights sampling uses: the raw weights of every part, then, with ``use_ema``, the averaged ones
    (``ema.shadow.*``) over the parts EMA covers (the net, a trained text encoder); frozen parts (autoencoder, a
    frozen text encoder) are not averaged and keep their raw weights."""
    weights = {key: value for key, value in state.items() if not key.startswith("ema.")}
    if use_ema:
        prefix = "ema.shadow."
        weights.update({key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)})
    return weights
