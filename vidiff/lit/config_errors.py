"""`vidiff fit` configuration errors in one line each: the key, the value and the fix.

jsonargparse reports a bad config as 40-80 lines of usage text and a nested "Does not validate against any of the
Union subtypes" message, and only its first problem. :func:`config_problems` reads the config the way the user
wrote it (the ``--config`` files merged, then the ``--key value`` overrides) and checks every key against the
signature of the class it configures, so a config with three misspelt keys reports all three at once;
:func:`summarize_parse_error` turns jsonargparse's own message into one line for what the check does not cover.
A misspelt key gets the closest valid names (:func:`difflib.get_close_matches`).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

#: Sections whose value is ``class_path`` + ``init_args`` (LightningCLI's subclass mode).
CLASS_SECTIONS = ("model", "data")
#: Where a bare class name (``class_path: ShapesDataModule``) is looked up.
SHORT_NAME_MODULES = ("vidiff.lit", "vidiff.data", "vidiff.nn.unet", "torch.optim", "torch.optim.lr_scheduler")
_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _did_you_mean(name: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(set(valid)), n=2, cutoff=0.6)
    if not close:
        return "see `vidiff fit --help` (or --print_config) for the valid keys"
    return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?"


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True).strip()
    text = text.removesuffix("\n...").removesuffix(" ...")
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------------------------- the config as written
def _merge(base: dict, new: dict) -> dict:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            # a new class_path replaces the old init_args (jsonargparse does the same for another class)
            if "class_path" in value and value["class_path"] != base[key].get("class_path"):
                base[key] = dict(value)
            else:
                _merge(base[key], value)
        else:
            base[key] = value
    return base


def _load_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _set(cfg: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    if parts[0] in CLASS_SECTIONS and len(parts) > 1 and parts[1] not in ("class_path", "init_args", "dict_kwargs"):
        parts.insert(1, "init_args")  # --model.image_size is short for --model.init_args.image_size
    if parts[0] in CLASS_SECTIONS and len(parts) == 1 and isinstance(value, str):
        value = {"class_path": value}  # --model VideoDiffusion
    node = cfg
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    if isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
        _merge(node[parts[-1]], value)
    else:
        node[parts[-1]] = value


def raw_config(args: Sequence[str]) -> dict:
    """The config of a ``vidiff fit`` command line as written: ``--config`` files (or YAML strings) merged in
    order, then the ``--key value`` / ``--key=value`` overrides; values parsed as YAML, nothing validated."""
    cfg: dict = {}
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") and token != "-c":
            i += 1
            continue
        if "=" in token:
            key, text = token[2:].split("=", 1)
            i += 1
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            key, text = token.lstrip("-"), args[i + 1]
            i += 2
        else:
            i += 1
            continue
        if key in ("c", "config"):
            path = Path(text)
            try:
                loaded = yaml.safe_load(path.read_text()) if path.is_file() else yaml.safe_load(text)
            except (OSError, yaml.YAMLError):
                continue  # jsonargparse reports an unreadable config file
            if isinstance(loaded, dict):
                for k, v in loaded.items():
                    _set(cfg, k, v)
        else:
            _set(cfg, key, _load_value(text))
    return cfg


# ------------------------------------------------------------------------------------------------ checking
def resolve_class(path: Any) -> type | None:
    """The class a ``class_path`` names (dotted path or a bare vidiff/torch name), or None."""
    if not isinstance(path, str) or not path:
        return None
    candidates = [path] if "." in path else [f"{m}.{path}" for m in SHORT_NAME_MODULES]
    for candidate in candidates:
        module, _, name = candidate.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError):
            continue
        if inspect.isclass(obj):
            return obj
    return None


def _parameters(cls: type) -> dict[str, inspect.Parameter] | None:
    """``cls.__init__``'s named parameters, or None when it takes ``**kwargs`` (any key may be valid)."""
    try:
        sig = inspect.signature(cls.__init__, eval_str=True)
    except Exception:  # noqa: BLE001 - unresolvable annotations: fall back to the names only
        try:
            sig = inspect.signature(cls.__init__)
        except (TypeError, ValueError):
            return None
    params = dict(list(sig.parameters.items())[1:])  # without self
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return {k: p for k, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL}


def _accepts(annotation: Any, value: Any) -> bool | None:
    """Whether ``value`` fits a simple annotation (int, float, bool, str, Literal, Optional/Union of them);
    None when the annotation is not simple (jsonargparse judges those)."""
    if annotation is inspect.Parameter.empty or isinstance(annotation, str):
        return None
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if origin is typing.Union or type(annotation).__name__ == "UnionType":
        answers = [value is None if a is type(None) else _accepts(a, value) for a in typing.get_args(annotation)]
        return True if any(answers) else (None if None in answers else False)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:
                return False
            return True
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, (str, int, float)) and not isinstance(value, bool)
    return None


def _expected(annotation: Any) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(_show(a) for a in typing.get_args(annotation))
    words = [_TYPE_WORDS.get(a, getattr(a, "__name__", str(a))) for a in args]
    if typing.get_origin(args[0]) is typing.Literal:
        words = ["one of " + ", ".join(_show(a) for a in typing.get_args(args[0]))]
    text = " or ".join(words)
    return text + (" (or null)" if type(None) in typing.get_args(annotation) else "")


def _check_class(class_path: Any, init_args: Any, prefix: str, problems: list[str]) -> None:
    cls = resolve_class(class_path)
    if cls is None or not isinstance(init_args, dict):
        return
    params = _parameters(cls)
    if params is None:
        return
    for key, value in init_args.items():
        where = f"{prefix}{key}"
        if key not in params:
            problems.append(f"{where}: {cls.__name__} has no setting `{key}` (given {_show(value)}); "
                            f"{_did_you_mean(key, params)}")
            continue
        if isinstance(value, dict) and "class_path" in value:
            _check_class(value["class_path"], value.get("init_args", {}), f"{where}.init_args.", problems)
            continue
        annotation = params[key].annotation
        if _accepts(annotation, value) is False:
            default = params[key].default
            example = "" if default in (inspect.Parameter.empty, None) else f" such as {_show(default)} (the default)"
            wanted = _expected(annotation)
            problems.append(f"{where}: expected {wanted}, got {_show(value)}; give {wanted}"
                            f"{example}")


def config_problems(args: Sequence[str], parser: Any) -> list[str]:
    """Every misspelt key and every value of the wrong simple type in a ``vidiff fit`` command line, one line each.

    Args:
        args: the command line after the subcommand (``--config FILE --trainer.max_steps 2 ...``).
        parser: the subcommand's jsonargparse parser (its option names are the valid non-class keys).
    """
    cfg = raw_config(args)
    dests = {a.dest for a in getattr(parser, "_actions", []) if a.dest not in (None, "help")}
    top = {d.split(".")[0] for d in dests} | {"config"}
    problems: list[str] = []
    for key, value in cfg.items():
        if key in CLASS_SECTIONS and isinstance(value, dict):
            _check_class(value.get("class_path"), value.get("init_args", {}), f"{key}.init_args.", problems)
        elif key not in top:
            problems.append(f"{key}: no such section or setting (given {_show(value)}); {_did_you_mean(key, top)}")
        elif isinstance(value, dict) and any(d.startswith(f"{key}.") for d in dests):
            group = [d.split(".", 1)[1] for d in dests if d.startswith(f"{key}.")]
            for sub, subvalue in value.items():
                if sub not in group:
                    problems.append(f"{key}.{sub}: no such setting (given {_show(subvalue)}); "
                                    f"{_did_you_mean(sub, group)}")
    return problems


# ------------------------------------------------------------------------------- jsonargparse's own messages
def _section(text: str) -> str:
    if "LightningDataModule" in text:
        return "data"
    if "LightningModule" in text:
        return "model"
    return ""


def summarize_parse_error(message: str, parser: Any = None) -> str:
    """jsonargparse's parse error as one line naming the key (``model.init_args.net.init_args.x: ...``)."""
    match = re.search(r"unrecognized arguments: (--?\S+)(?: (.*))?", message)
    if match:
        key = match.group(1).lstrip("-")
        dests = {a.dest for a in getattr(parser, "_actions", [])}
        return f"{key}: no such setting (given {match.group(2) or 'no value'}); {_did_you_mean(key, dests)}"
    match = re.search(r"Group '([\w.]+)' does not accept option '(\w+)'", message)
    if match:
        group, key = match.groups()
        dests = [a.dest.split(".", 1)[1] for a in getattr(parser, "_actions", []) if a.dest.startswith(f"{group}.")]
        return f"{group}.{key}: no such setting; {_did_you_mean(key, dests)}"
    path = [m for m in re.findall(r'Parser key "([\w.]+)"', message)]
    classes = re.findall(r"Problem with given class_path '([\w.]+)'", message)
    prefix = ""
    for i, part in enumerate(path):
        prefix += f"{part}." + ("init_args." if i < len(classes) else "")
    match = re.search(r"Option '(\w+)' is not accepted", message)
    if match:
        key = match.group(1)
        cls = resolve_class(classes[-1]) if classes else None
        params = (_parameters(cls) or {}) if cls is not None else {}
        name = cls.__name__ if cls is not None else "it"
        return f"{prefix}{key}: {name} has no setting `{key}`; {_did_you_mean(key, params)}"
    match = re.search(r"Expected a (.+?)\. Got value: (.*)", message)
    if match:
        expected = re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", match.group(1))
        expected = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}.get(
            expected, expected)
        return f"{prefix.rstrip('.')}: expected {expected}, got {match.group(2).strip()!r}; give {expected}"
    lines = [line.strip(" -") for line in message.splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Given value", "Subtypes", "Errors", "Expected a <class "
                                                              "'NoneType'>", "Does not validate"))]
    return " ".join((useful or lines)[-1:])[:300] if lines else "invalid configuration"


def summarize_instantiation_error(err: BaseException) -> str:
    """A constructor's refusal (``image_size: expected a positive integer, got -8``) as one line naming its key."""
    text = str(err)
    if "Does not validate against any of the Union subtypes" not in text:
        return " ".join(text.split())[:400] or type(err).__name__
    section = _section(text.split("Errors:")[0])
    entries = [m.strip() for m in re.findall(r"^\s*- (.+)$", text, flags=re.M)]
    entries = [e for e in entries if not e.startswith("Expected a <class 'NoneType'>")]
    detail = entries[0] if entries else " ".join(text.split())[:300]
    if section and re.match(r"^\w+: ", detail):
        return f"{section}.init_args.{detail}"
    return f"{section}: {detail}" if section else detail
