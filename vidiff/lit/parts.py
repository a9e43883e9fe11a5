"""Small helpers of the Lightning modules: building parts from ``{class_path, init_args}`` specs, plain hparams.

A checkpoint chooses what to import only within an allow-list: :func:`check_checkpoint_classes` refuses, before
anything is imported, every ``class_path`` in a checkpoint's hyperparameters outside the modules ``vidiff`` and
``torch``, plus those named in the environment variable ``VIDIFF_ALLOWED_MODULES`` (comma-separated module
names, e.g. ``mylab.nets,other``) or passed to :func:`allow_modules`. YAML configs are the user's own and are not
restricted.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from torch import nn

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
            f"or vidiff.lit.parts.allow_modules({top!r})"
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


def _split_spec(spec: Mapping[str, Any], argument: str) -> tuple[str, dict[str, Any]]:
    unknown = set(spec) - {"class_path", "init_args", "dict_kwargs"}
    if "class_path" not in spec or unknown:
        raise ValueError(
            f"{argument}: expected a mapping with 'class_path' and optional 'init_args', got keys {sorted(spec)}"
        )
    return spec["class_path"], {**dict(spec.get("init_args") or {}), **dict(spec.get("dict_kwargs") or {})}


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
    class_path, init_args = _split_spec(spec, argument)
    cls = import_class(class_path, argument)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        msg = f"{argument}.class_path: expected a subclass of {base.__name__}, got {class_path!r}"
        raise ValueError(msg)  # noqa: TRY004 (a bad config value, not a bad Python type)
    return cls(**init_args)


def build_callable(spec: Callable | Mapping[str, Any] | None, argument: str) -> Callable | None:
    """An optimizer / scheduler factory from a callable or a ``{class_path, init_args}`` mapping (hparams form)."""
    if spec is None or callable(spec):
        return spec
    if not isinstance(spec, Mapping):
        raise TypeError(
            f"{argument}: expected a callable or a {{class_path, init_args}} mapping, got {spec!r}"
        )
    class_path, init_args = _split_spec(spec, argument)
    return functools.partial(import_class(class_path, argument), **init_args)


def module_spec(module: nn.Module) -> dict[str, Any] | None:
    """``{class_path, init_args}`` of a module that records its constructor arguments in ``.config``, else None."""
    config = getattr(module, "config", None)
    if not isinstance(config, Mapping) or not is_plain(dict(config)):
        return None
    cls = type(module)
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": dict(config)}


def is_plain(value: Any) -> bool:
    """True for None, bool, int, float, str and lists / tuples / str-keyed dicts of them (safe for weights_only)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(is_plain(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    return False


@contextlib.contextmanager
def eval_mode(*modules: nn.Module | None) -> Iterator[None]:
    """Put modules in eval mode for the block and restore each submodule's mode afterwards."""
    saved = [(m, m.training) for module in modules if module is not None for m in module.modules()]
    try:
        for module in modules:
            if module is not None:
                module.eval()
        yield
    finally:
        for m, mode in saved:
            m.training = mode
