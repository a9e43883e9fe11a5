"""Evaluation reports: one JSON file and one markdown table per run, written atomically.

The report (``report.json``)::

    {"task": "prediction", "spec": {"length": 16, "given": [...], "scored": [...], "scheme": ...},
     "settings": {...the command's options...},
     "methods": ["model", "copy-last", "linear", "noise", "ground truth"],
     "results": {"model": {"centre_error": 1.9, "centre_error_per_step": [...], ...}, ...}}

The table (``report.md``) has one row per metric and one column per method; per-step lists of
:data:`STEP_ROWS` metrics with at most :data:`MAX_STEP_ROWS` entries get a row per step (``h=1`` .. for prediction, ``t=frame`` otherwise).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from vidiff.evaluate.tasks import TaskSpec
from vidiff.io import write_json_atomic, write_text_atomic

__all__ = ["MAX_STEP_ROWS", "METRIC_ORDER", "build_report", "markdown_table", "write_report"]

#: Longest per-step list shown row by row in the table (longer ones only appear in the JSON).
MAX_STEP_ROWS = 16

#: Row order of the table (metrics not listed follow in alphabetical order).
METRIC_ORDER = (
    "centre_error", "miss_rate", "psnr", "ssim", "persistence", "motion_consistency",
    "caption_colour", "caption_shape", "caption_precision", "fvd", "kvd",
)

#: Metrics whose per-step lists get a row per step in the table (all per-step lists are in the JSON).
STEP_ROWS = ("centre_error", "psnr", "ssim")

#: Whether lower is better, shown in the table's metric names.
LOWER_IS_BETTER = {"centre_error", "miss_rate", "fvd", "kvd"}


def _json_safe(value: Any) -> Any:
    """``nan``/``inf`` -> None (strict JSON), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def build_report(spec: TaskSpec, results: Mapping[str, Mapping[str, Any]], settings: Mapping[str, Any]) -> dict:
    """The report dict (module docstring); non-finite numbers become ``null``."""
    return _json_safe({
        "task": spec.task,
        "spec": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(spec).items()},
        "settings": dict(settings),
        "methods": list(results),
        "results": {name: dict(metrics) for name, metrics in results.items()},
    })


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


def _metric_names(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for metrics in results.values():
        names += [k for k in metrics if not k.endswith("_per_step") and k not in names]
    order = {m: i for i, m in enumerate(METRIC_ORDER)}
    return sorted(names, key=lambda m: (order.get(m, len(order)), m))


def markdown_table(report: Mapping[str, Any], indent: str = "&nbsp;&nbsp;") -> str:
    """The report as a markdown table: metrics as rows, methods as columns; per-step rows start with ``indent``
    (HTML non-breaking spaces for the .md file; the terminal gets plain text, see :func:`terminal_table`)."""
    results, methods = report["results"], report["methods"]
    spec = report["spec"]
    scored: Sequence[int] = spec["scored"]
    horizon = spec["task"] == "prediction"
    lines = [
        "| metric | " + " | ".join(methods) + " |",
        "| --- | " + " | ".join("---:" for _ in methods) + " |",
    ]
    for name in _metric_names(results):
        arrow = " (lower better)" if name in LOWER_IS_BETTER else ""
        lines.append(f"| {name}{arrow} | " + " | ".join(_fmt(results[m].get(name, "—")) for m in methods) + " |")
        key = f"{name}_per_step"
        lists = [results[m].get(key) for m in methods]
        k = max((len(v) for v in lists if v), default=0)
        if name in STEP_ROWS and 1 < k <= MAX_STEP_ROWS:
            for j in range(k):
                label = f"h={j + 1}" if horizon else f"t={scored[j]}"
                cells = [_fmt(v[j]) if v else "—" for v in lists]
                lines.append(f"| {indent}{name} {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def terminal_table(report: Mapping[str, Any]) -> str:
    """:func:`markdown_table` for a terminal: no HTML entities."""
    return markdown_table(report, indent="  ")


def write_report(out: str | os.PathLike, report: Mapping[str, Any], title: str | None = None) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out`` (created), each atomically.

    Returns:
        ``(json path, markdown path)``.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    spec = report["spec"]
    title = title or f"vidiff evaluate: {spec['task']} ({spec['scheme']}, {spec['length']} frames)"
    settings = report.get("settings", {})
    lines = [f"# {title}", ""]
    if settings:
        lines += [", ".join(f"{k}={v}" for k, v in settings.items() if v is not None), ""]
    lines.append(markdown_table(report))
    json_path = write_json_atomic(folder / "report.json", report)
    md_path = write_text_atomic(folder / "report.md", "\n".join(lines))
    return json_path, md_path
