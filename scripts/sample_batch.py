#!/usr/bin/env python
"""Hierarchical (or any scheme's) long-video sampling in batch: many runs from one YAML or JSON config.

    python scripts/sample_batch.py configs/sample/hierarchy_shapes.yaml            # every run
    python scripts/sample_batch.py configs/sample/hierarchy_shapes.yaml --only hierarchy-2 --resume
    python scripts/sample_batch.py CONFIG --dry-run                                 # check and list, sample nothing

Config keys: ``out_root`` (folder of the runs), ``defaults`` (any ``vidiff sample`` option, with dashes or
underscores) and ``runs`` (a list; each has a ``name`` and overrides of the defaults). Every run is validated
before the first one starts (unknown options are an error that names them), is written to ``out_root/<name>``
exactly as ``vidiff sample --out out_root/<name>`` would, and can be resumed with ``--resume``. At the end
``out_root/index.html`` links each run's gallery and ``out_root/runs.json`` lists their settings.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff.commands import sample as sample_command
from vidiff.io import write_json_atomic, write_text_atomic

log = logging.getLogger("sample_batch")


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON config and check its top-level keys."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config: no file at {str(path)!r}")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        config = yaml.safe_load(text) or {}
    else:
        config = json.loads(text)
    if not isinstance(config, dict):
        raise ValueError(f"config: {path} must hold a mapping with out_root, defaults, runs")  # noqa: TRY004
    unknown = sorted(set(config) - {"out_root", "defaults", "runs"})
    if unknown:
        raise ValueError(f"config: unknown top-level keys {unknown}; expected out_root, defaults, runs")
    if not isinstance(config.get("runs"), list) or not config["runs"]:
        raise ValueError("config: 'runs' must be a non-empty list of {name: ..., option: value}")
    return config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidiff sample")
    sample_command.add_arguments(parser)
    return parser


def build_runs(config: dict[str, Any], resume: bool = False) -> list[tuple[str, argparse.Namespace]]:
    """One ``vidiff sample`` namespace per run, defaults then the run's overrides; unknown options raise."""
    parser = _parser()
    dests = {a.dest for a in parser._actions if a.dest != "help"}
    out_root = Path(config.get("out_root", "samples/batch"))
    runs, names = [], set()
    for i, run in enumerate(config["runs"]):
        if not isinstance(run, dict) or not run.get("name"):
            raise ValueError(f"runs[{i}]: expected a mapping with a 'name', got {run!r}")
        name = str(run["name"])
        if name in names or "/" in name:
            raise ValueError(f"runs[{i}].name: {name!r} is repeated or holds '/'")
        names.add(name)
        options = {**(config.get("defaults") or {}), **{k: v for k, v in run.items() if k != "name"}}
        args = parser.parse_args(["--ckpt", "-", "--out", str(out_root / name)])
        for key, value in options.items():
            dest = key.replace("-", "_")
            if dest not in dests or dest == "out":
                raise ValueError(f"runs[{i}] ({name}): unknown option {key!r}; valid: {', '.join(sorted(dests - {'out'}))}")
            setattr(args, dest, value)
        if args.ckpt == "-":
            raise ValueError(f"runs[{i}] ({name}): no 'ckpt' in the run or in defaults")
        args.resume = args.resume or resume
        runs.append((name, args))
    return runs


def write_index(out_root: Path, done: list[tuple[str, dict[str, Any]]]) -> Path:
    """``out_root/index.html`` linking every run's gallery, and ``runs.json``."""
    rows = "".join(
        f'<li><a href="{html.escape(name)}/index.html">{html.escape(name)}</a>: '
        f"{html.escape(str(s.get('scheme')))}, {s.get('length')} frames, {s.get('num_videos')} videos, "
        f"{html.escape(str(s.get('sampler')))} {s.get('steps')} steps, {s.get('seconds')} s</li>"
        for name, s in done
    )
    write_json_atomic(out_root / "runs.json", dict(done))
    page = f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>vidiff batch</title></head><body>" \
           f"<h1>vidiff batch sampling</h1><ul>{rows}</ul></body></html>\n"
    return write_text_atomic(out_root / "index.html", page)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="YAML or JSON file with out_root, defaults, runs")
    p.add_argument("--only", nargs="+", default=None, help="run only these names")
    p.add_argument("--resume", action="store_true", help="resume interrupted runs")
    p.add_argument("--dry-run", action="store_true", help="validate and list the runs, sample nothing")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        runs = build_runs(config, args.resume)
        if args.only:
            missing = sorted(set(args.only) - {n for n, _ in runs})
            if missing:
                raise ValueError(f"--only: no runs named {missing}; runs: {[n for n, _ in runs]}")
            runs = [(n, a) for n, a in runs if n in args.only]
    except (ValueError, FileNotFoundError) as err:
        print(f"sample_batch: error: {err}", file=sys.stderr)
        return 2
    for name, run_args in runs:
        print(f"{name}: scheme={run_args.scheme or 'hierarchy-2'} length={run_args.length} "
              f"videos={run_args.num_videos} -> {run_args.out}")
    if args.dry_run:
        return 0
    out_root = Path(config.get("out_root", "samples/batch"))
    done, failed = [], []
    for name, run_args in runs:
        try:
            done.append((name, sample_command.sample_to_folder(run_args)))
        except (ValueError, FileNotFoundError) as err:
            print(f"sample_batch: run {name}: error: {err}", file=sys.stderr)
            failed.append(name)
        if done:
            write_index(out_root, done)
    print(f"{len(done)} runs written under {out_root}" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
