"""The `vidiff` command.

Two families of subcommands share one entry point:

* ``fit``, ``validate``, ``test``, ``predict`` go to Lightning's CLI (jsonargparse, ``--config``,
  ``--print_config``); see :mod:`vidiff.lit.cli`.
* Everything else (``sample``, ``scheme``, ``txt2img``, ``evaluate``, ``demo`` ...) is a plain argparse
  subcommand living in its own module under :mod:`vidiff.commands`. Each such module exposes
  ``HELP: str``, ``add_arguments(parser)`` and ``run(args) -> int | None``. Modules are imported only
  when their command runs, so ``vidiff --help`` stays fast.

A :class:`vidiff.io.errors.UserError` raised by any command, also one wrapped by Lightning or jsonargparse, ends the
command with one line ``vidiff COMMAND: error: ...`` on stderr (one line per problem when there are several) and
exit status 2: a :class:`~vidiff.io.errors.FileFault` (a full disk, a dead encoder, an unsafe or corrupt
checkpoint) or a :class:`~vidiff.io.errors.ConfigError` (a misspelt key, a wrong type or value, a missing or
unreadable input). ``VIDIFF_DEBUG=1`` shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from vidiff import __version__

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")

# name -> module under vidiff.commands (imported lazily)
COMMANDS: dict[str, str] = {
    "demo": "vidiff.commands.demo",
    "evaluate": "vidiff.commands.evaluate",
    "export": "vidiff.commands.export",
    "sample": "vidiff.commands.sample",
    "scheme": "vidiff.commands.scheme",
    "txt2img": "vidiff.commands.txt2img",
}


def _command_help(name: str) -> str:
    try:
        return importlib.import_module(COMMANDS[name]).HELP
    except Exception as err:  # a broken optional command must not break `vidiff --help`
        return f"(unavailable: {err})"


def _top_level_help() -> str:
    lines = [
        f"vidiff {__version__}: video and long-horizon video generation with diffusion models",
        "",
        "usage: vidiff COMMAND [options]   (vidiff COMMAND --help for a command's options)",
        "",
        "training (Lightning CLI, configured by YAML: --config FILE, --print_config):",
    ]
    lines += [f"  {name:<10} Lightning's `{name}` on a vidiff model and data module" for name in LIGHTNING_COMMANDS]
    lines += ["", "tools:"]
    lines += [f"  {name:<10} {_command_help(name)}" for name in sorted(COMMANDS)]
    lines += ["", "options:", "  -h, --help   show this message", "  --version    print the version"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the `vidiff` command line; returns the exit code (also used by the console script)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_level_help())
        return 0
    if argv[0] == "--version":
        print(f"vidiff {__version__}")
        return 0
    name = argv[0]
    if name not in LIGHTNING_COMMANDS and name not in COMMANDS:
        known = ", ".join(list(LIGHTNING_COMMANDS) + sorted(COMMANDS))
        print(f"vidiff: unknown command {name!r}; choose one of: {known}", file=sys.stderr)
        return 2
    try:
        return _run(name, argv)
    except BaseException as err:  # a user error (bad setting, full disk, unsafe checkpoint ...) ends in one line
        from vidiff.io.errors import debug_enabled, find_fault  # lazily: `vidiff --help` must not import torch

        fault = find_fault(err)
        if fault is None or debug_enabled():
            raise
        for line in str(fault).splitlines() or [type(fault).__name__]:
            print(f"vidiff {name}: error: {line}", file=sys.stderr)
        return 2


def _run(name: str, argv: list[str]) -> int:
    """Run one subcommand (``argv[0]`` is its name)."""
    if name in LIGHTNING_COMMANDS:
        from vidiff.lit.cli import run_lightning_cli

        run_lightning_cli(argv)
        return 0
    from vidiff.commands.options import HelpFormatter, dashed

    module = importlib.import_module(COMMANDS[name])
    parser = argparse.ArgumentParser(prog=f"vidiff {name}", description=module.HELP,
                                     formatter_class=HelpFormatter)
    module.add_arguments(parser)
    args = parser.parse_args(dashed(parser, argv[1:]))
    args._argv = argv[1:]  # the command line as typed (e.g. for `vidiff sample`'s --resume hint)
    code = module.run(args)
    return int(code or 0)


def entry() -> None:
    sys.exit(main())
