"""A static ``index.html`` showing a folder's videos with the settings that made them."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidiff.io.atomic import write_text_atomic


@dataclass
class GalleryItem:
    """One video on the page; file names are relative to the page's folder.

    Attributes:
        video: the mp4.
        title: caption above it.
        gif: optional gif of the same video.
        strip: optional png strip.
        settings: per-video settings (seed, prompt, ...), shown under it.
    """

    video: str
    title: str = ""
    gif: str | None = None
    strip: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def _table(settings: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in settings.items()
    )
    return f"<table>{rows}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


_STYLE = """
body { font-family: sans-serif; margin: 1.5em; background: #fafafa; }
.grid { display: flex; flex-wrap: wrap; gap: 1.5em; }
.item { background: white; padding: .8em; border: 1px solid #ddd; border-radius: 4px; }
video { image-rendering: pixelated; width: 256px; }
img.strip { image-rendering: pixelated; max-width: 100%; display: block; margin-top: .4em; }
table { border-collapse: collapse; font-size: 85%; margin-top: .4em; }
th, td { text-align: left; padding: 1px 6px; border-bottom: 1px solid #eee; }
"""


def render_gallery(items: Sequence[GalleryItem], settings: Mapping[str, Any], title: str = "vidiff samples") -> str:
    """The page's HTML: run-wide ``settings`` in a table, then one block per item."""
    blocks = []
    for item in items:
        links = [f'<a href="{html.escape(item.video)}">mp4</a>']
        if item.gif:
            links.append(f'<a href="{html.escape(item.gif)}">gif</a>')
        strip = f'<img class="strip" src="{html.escape(item.strip)}" alt="frames">' if item.strip else ""
        blocks.append(
            '<div class="item">'
            f"<h3>{html.escape(item.title or item.video)}</h3>"
            f'<video src="{html.escape(item.video)}" controls loop autoplay muted playsinline></video>'
            f"<div>{' · '.join(links)}</div>{strip}{_table(item.settings)}</div>"
        )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><h2>Settings</h2>{_table(settings)}"
        f"<h2>Videos ({len(items)})</h2><div class=\"grid\">{''.join(blocks)}</div></body></html>\n"
    )


def write_gallery(
    folder: str | os.PathLike,
    items: Sequence[GalleryItem],
    settings: Mapping[str, Any],
    title: str = "vidiff samples",
    filename: str = "index.html",
) -> Path:
    """Write ``folder/filename`` (atomically) showing ``items``; every referenced file must exist.

    Args:
        folder: where the page and the videos live.
        items: the videos, in page order.
        settings: run-wide settings (checkpoint, scheme, sampler, ...).
        title: page title.
        filename: page name.

    Returns:
        the page's path.
    """
    folder = Path(folder)
    for item in items:
        for name in (item.video, item.gif, item.strip):
            if name is not None and not (folder / name).is_file():
                raise FileNotFoundError(f"items: {name!r} is not a file in {str(folder)!r}")
    return write_text_atomic(folder / filename, render_gallery(items, settings, title))
