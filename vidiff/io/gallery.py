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
        strip: optional png strip (:func:`vidiff.io.write_labelled_strip`).
        settings: per-video settings (seed, prompt, ...), shown under it.
        num_frames: frames in the video (draws the timeline under it; None: no timeline).
        fps: the mp4's frame rate (the timeline's playhead follows the video).
        given: frame numbers that were given (observed clip, keyframes), marked on the timeline and the strip.
        strip_frames: the frame numbers the strip shows, in order (its caption says which are skipped).
    """

    video: str
    title: str = ""
    gif: str | None = None
    strip: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    num_frames: int | None = None
    fps: float = 8.0
    given: Sequence[int] = ()
    strip_frames: Sequence[int] | None = None


def _table(settings: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in settings.items()
    )
    return f"<table>{rows}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def runs(frames: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted frame numbers as ``(first, last)`` runs of consecutive frames: ``[0, 1, 2, 9]`` ->
    ``[(0, 2), (9, 9)]``."""
    out: list[tuple[int, int]] = []
    for f in sorted(set(frames)):
        if out and f == out[-1][1] + 1:
            out[-1] = (out[-1][0], f)
        else:
            out.append((f, f))
    return out


def describe_frames(frames: Sequence[int]) -> str:
    """``[0, 1, 2, 9]`` -> ``"0-2, 9"``."""
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs(frames))


def tick_step(length: int, most: int = 10) -> int:
    """A round frame spacing (1, 2, 5, 10, 20, 25, 50, ...): at most ``most`` intervals over ``length``."""
    steps = sorted({m * 10**e for e in range(9) for m in (1, 2, 5)} | {25 * 10**e for e in range(8)})
    return next(step for step in steps if length / step <= most)


def _timeline(item: GalleryItem) -> str:
    """A bar under the video: given frames in orange, frame ticks, and a playhead the page's script moves."""
    n = item.num_frames or 1
    spans = "".join(
        f'<span class="given" style="left:{100 * a / n:.3f}%;width:{100 * (b - a + 1) / n:.3f}%" '
        f'title="given frame{"s" if a != b else ""} {describe_frames(range(a, b + 1))}"></span>'
        for a, b in runs(item.given)
    )
    step = tick_step(n - 1)
    ticks = list(range(0, n, step))
    if n - 1 - ticks[-1] >= step / 2:
        ticks.append(n - 1)
    labels = "".join(f'<span style="left:{100 * (t + 0.5) / n:.3f}%">{t}</span>' for t in ticks)
    return (f'<div class="timeline" title="frames 0-{n - 1}">{spans}<span class="playhead"></span></div>'
            f'<div class="ticks">{labels}</div>')


def _strip_caption(item: GalleryItem) -> str:
    shown = list(item.strip_frames or [])
    if not shown or item.num_frames is None:
        return ""
    if len(shown) == item.num_frames:
        what = f"all {item.num_frames} frames"
    else:
        gaps = sorted({b - a for a, b in zip(shown, shown[1:])})
        every = f"{gaps[0]}" if len(gaps) == 1 else f"{gaps[0]}-{gaps[-1]}"
        what = (f"{len(shown)} of {item.num_frames} frames, one every {every} "
                "(the frames between are skipped), numbered")
    marked = sorted(set(shown) & set(item.given))
    given = f"; given frames framed in orange ({describe_frames(marked)})" if marked else ""
    return f'<p class="note">Strip: {what}{given}.</p>'


_STYLE = """
body { font-family: sans-serif; margin: 1.5em; background: #fafafa; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .2em; }
p.summary { margin: 0 0 1em; color: #444; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 1.5em; }
.item { background: white; padding: .8em; border: 1px solid #ddd; border-radius: 4px; }
.item h3 { margin: 0 0 .4em; font-size: 1em; }
.player { position: relative; }
video { image-rendering: pixelated; width: 100%; display: block; background: #000;
        outline: 6px solid transparent; outline-offset: -6px; }
video.on-given { outline-color: rgb(255, 140, 0); }
.frame { position: absolute; top: 4px; left: 4px; background: rgba(0,0,0,.6); color: #fff; font-size: 80%;
         padding: 1px 5px; border-radius: 3px; font-variant-numeric: tabular-nums; }
.timeline { position: relative; height: 12px; background: #dde3ea; margin-top: 4px; }
.timeline .given { position: absolute; top: 0; bottom: 0; background: rgb(255, 140, 0); min-width: 2px; }
.timeline .playhead { position: absolute; top: -2px; bottom: -2px; width: 2px; background: #000; left: 0; }
.ticks { position: relative; height: 1.2em; font-size: 75%; color: #555; }
.ticks span { position: absolute; top: 3px; transform: translateX(-50%); }
.ticks span::before { content: ""; position: absolute; left: 50%; top: -4px; height: 4px;
                      border-left: 1px solid #777; }
.meta, p.note { font-size: 85%; color: #444; margin: .3em 0; }
.key { display: inline-block; width: .9em; height: .9em; background: rgb(255, 140, 0);
       vertical-align: -.1em; }
img.strip { image-rendering: pixelated; max-width: 100%; display: block; margin-top: .6em; }
details { margin-top: 2em; }
summary { cursor: pointer; font-weight: bold; }
table { border-collapse: collapse; font-size: 85%; margin-top: .4em; }
th, td { text-align: left; padding: 1px 6px; border-bottom: 1px solid #eee; vertical-align: top; }
"""

#: Moves each timeline's playhead and frame counter with its video and frames the video in orange while a
#: given frame plays (the mp4 files themselves are left as sampled).
_SCRIPT = """
const players = [...document.querySelectorAll('.item')].filter(e => e.dataset.frames);
function tick() {
  for (const e of players) {
    const v = e.querySelector('video'), n = +e.dataset.frames, fps = +e.dataset.fps;
    const f = Math.min(n - 1, Math.floor(v.currentTime * fps + 1e-3));
    const marks = e.dataset.given ? e.dataset.given.split(',').map(Number) : [];
    const given = e.given || (e.given = new Set(marks));
    v.classList.toggle('on-given', given.has(f));
    e.querySelector('.playhead').style.left = (100 * (f + 0.5) / n) + '%';
    e.querySelector('.frame').textContent = 'frame ' + f + ' / ' + n + (given.has(f) ? ' · given' : '');
  }
  requestAnimationFrame(tick);
}
requestAnimationFrame(tick);
"""


def _block(item: GalleryItem) -> str:
    links = [f'<a href="{html.escape(item.video)}">mp4</a>']
    if item.gif:
        links.append(f'<a href="{html.escape(item.gif)}">gif</a>')
    if item.strip:
        links.append(f'<a href="{html.escape(item.strip)}">png strip</a>')
    facts = [f"{html.escape(str(k))} {html.escape(_fmt(v))}" for k, v in item.settings.items()
             if v not in ("", None)]
    if item.given:
        facts.append(f'<span class="key"></span> given frames {describe_frames(item.given)}')
    data = ""
    timeline = ""
    counter = ""
    if item.num_frames:
        given = ",".join(str(int(f)) for f in sorted(set(item.given)))
        data = f' data-frames="{item.num_frames}" data-fps="{item.fps:g}" data-given="{given}"'
        timeline = _timeline(item)
        counter = '<span class="frame"></span>'
    strip = f'<img class="strip" src="{html.escape(item.strip)}" alt="frames">' if item.strip else ""
    return (
        f'<div class="item"{data}>'
        f"<h3>{html.escape(item.title or item.video)}</h3>"
        f'<div class="player"><video src="{html.escape(item.video)}" loop autoplay muted playsinline '
        f"controls></video>{counter}</div>{timeline}"
        f'<div class="meta">{" · ".join(facts + links)}</div>{strip}{_strip_caption(item)}</div>'
    )


def render_gallery(
    items: Sequence[GalleryItem],
    settings: Mapping[str, Any],
    title: str = "vidiff samples",
    summary: str = "",
) -> str:
    """The page's HTML: the videos first (large, looping, with a timeline marking the given frames), then the
    run-wide ``settings`` folded away in a ``<details>`` table. ``summary`` is one line under the title."""
    blocks = "".join(_block(item) for item in items)
    legend = ""
    if any(item.given for item in items):
        legend = ('<p class="note"><span class="key"></span> given frames (observed clip, keyframes): orange '
                  "on the timeline, framed in orange in the video while they play and in the strip.</p>")
    head = f'<p class="summary">{html.escape(summary)}</p>' if summary else ""
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{head}{legend}<div class=\"grid\">{blocks}</div>"
        f"<details><summary>Settings ({len(settings)})</summary>{_table(settings)}</details>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


def write_gallery(
    folder: str | os.PathLike,
    items: Sequence[GalleryItem],
    settings: Mapping[str, Any],
    title: str = "vidiff samples",
    filename: str = "index.html",
    summary: str = "",
) -> Path:
    """Write ``folder/filename`` (atomically) showing ``items``; every referenced file must exist.

    Args:
        folder: where the page and the videos live.
        items: the videos, in page order.
        settings: run-wide settings (checkpoint, scheme, sampler, ...).
        title: page title.
        filename: page name.
        summary: one line under the title (what made the videos, at a glance).

    Returns:
        the page's path.
    """
    folder = Path(folder)
    for item in items:
        for name in (item.video, item.gif, item.strip):
            if name is not None and not (folder / name).is_file():
                raise FileNotFoundError(f"items: {name!r} is not a file in {str(folder)!r}")
    return write_text_atomic(folder / filename, render_gallery(items, settings, title, summary))
