"""Small helpers of the Lightning modules: building parts from ``{class_path, init_args}`` specs, plain hparams."""

from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from torch import nn


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
