"""Options shared by the argparse subcommands, so one idea has one name, one default and one help text.

* ``--ckpt`` (a vidiff checkpoint or weights file), ``--scheme``, ``--sampler``, ``--steps`` (default
  :data:`vidiff.pipelines.DEFAULT_STEPS`), ``--batch-budget``, ``--device`` (default ``auto``: the GPU when
  there is one), ``--guidance``; the sampling-speed options (``--precision``, ``--compile``,
  ``--channels-last``, ``--no-inference-mode``: :mod:`vidiff.pipelines.speed`) of sample and evaluate.
* Old spellings stay as hidden aliases (:data:`HIDDEN_ALIASES`: accepted, not shown in ``--help``), and
  underscores may stand for dashes (``--max_frames``, ``--ckpt_path``), as in Lightning's own options
  (:func:`dashed`). Lightning's subcommands (fit, validate, test, predict) keep Lightning's ``--ckpt_path``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

#: Option strings kept for scripts written against earlier versions; accepted but left out of ``--help``.
HIDDEN_ALIASES = frozenset({"--name", "--max-batch", "--ckpt-path"})


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter without the :data:`HIDDEN_ALIASES` of an option, and not breaking names such as
    ``long-range`` or ``dpmpp_2m_karras`` across lines."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        return textwrap.wrap(self._whitespace_matcher.sub(" ", text).strip(), width, break_on_hyphens=False)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        shown = [s for s in action.option_strings if s not in HIDDEN_ALIASES]
        if not shown or len(shown) == len(action.option_strings):
            return super()._format_action_invocation(action)
        copy = argparse.Action(shown, action.dest, nargs=action.nargs, metavar=action.metavar)
        return super()._format_action_invocation(copy)


def dashed(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """``argv`` with ``--some_option`` (also ``--some_option=value``) spelt ``--some-option`` where the parser
    knows only the dashed spelling."""
    known = set(parser._option_string_actions)
    out = []
    for token in argv:
        name, sep, value = token.partition("=")
        if name.startswith("--") and "_" in name and name not in known:
            fixed = "--" + name[2:].replace("_", "-")
            if fixed in known:
                token = fixed + sep + value
        out.append(token)
    return out


def sampler_help(default: str = "ddim") -> str:
    from vidiff.diffusion import SAMPLERS

    return f"one of {', '.join(SAMPLERS)} (default {default}; docs/sampling.md)"


def scheme_help(default: str, levels: bool = True) -> str:
    from vidiff.schemes import SCHEMES
    from vidiff.schemes.levels import LEVEL_SCHEMES

    names = list(SCHEMES) + (list(LEVEL_SCHEMES) if levels else [])
    combined = "; or keyframes then a per-frame fill: STAGE+LEVEL, e.g. hierarchy-2+fifo" if levels else ""
    return f"one of {', '.join(names)}{combined} (default {default}; `vidiff scheme --png` draws them)"


def add_ckpt_argument(group, help: str, required: bool = True) -> None:
    """``--ckpt`` (hidden alias ``--ckpt-path``, also ``--ckpt_path``)."""
    group.add_argument("--ckpt", "--ckpt-path", dest="ckpt", required=required, default=None, help=help)


def add_device_argument(group) -> None:
    group.add_argument("--device", default="auto",
                       help="torch device: auto (default: cuda when a GPU is present, else cpu), cpu, cuda, "
                       "cuda:1")


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``; other names unchanged."""
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def add_speed_arguments(parser: argparse.ArgumentParser) -> None:
    """``--precision``, ``--compile``, ``--channels-last``, ``--no-inference-mode`` in their own group."""
    g = parser.add_argument_group("speed (docs/benchmarks.md, 'Cost of one sampling step')")
    g.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="network arithmetic: fp32 (default) or bf16 autocast (faster on CPUs with AVX512-BF16 "
                        "and on GPUs; outputs differ by about 0.1)")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the network (the first call compiles: minutes on a CPU)")
    g.add_argument("--channels-last", action="store_true", help="the network in channels-last memory format")
    g.add_argument("--no-inference-mode", action="store_true",
                   help="run the network under no_grad instead of inference_mode (same numbers, slower)")


def speed_of(args: argparse.Namespace) -> Any:
    """The :class:`vidiff.pipelines.Speed` of parsed options."""
    from vidiff.pipelines import Speed

    return Speed(precision=args.precision, inference=not args.no_inference_mode,
                 channels_last=args.channels_last, compile=args.compile)
