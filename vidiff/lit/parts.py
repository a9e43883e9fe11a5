"""Small helpers of the Lightning modules: optimizer factories from specs, plain hparams, eval mode.

Building modules from ``{class_path, init_args}`` specs and the allow-list of classes a checkpoint may name live
in :mod:`vidiff.io.checkpoint` (pure: the Lightning-free loader of :mod:`vidiff.pipelines` uses them too).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from torch import nn

from vidiff.io.checkpoint import import_class, split_spec

def build_callable(spec: Callable | Mapping[str, Any] | None, argument: str) -> Callable | None:
    """An optimizer / scheduler factory from a callable or a ``{class_path, init_args}`` mapping (hparams form)."""
    if spec is None or callable(spec):
        return spec
    if not isinstance(spec, Mapping):
        raise TypeError(
            f"{argument}: expected a callable or a {{class_path, init_args}} mapping, got {spec!r}"
        )
    class_path, init_args = split_spec(spec, argument)
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
