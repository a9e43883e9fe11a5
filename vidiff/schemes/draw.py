"""Pictures of a plan: rows = stages, columns = frames (PIL image or ASCII table).

Each cell has a state (:func:`cell_state`): the frame is generated in this stage, observed by it, given by the
user, already produced by an earlier stage, or not available yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .stage import Stage

STATES = ("generated", "observed", "given", "done", "todo")
COLOURS: dict[str, tuple[int, int, int]] = {
    "generated": (230, 85, 13),  # orange: produced in this stage
    "observed": (33, 113, 181),  # blue: seen by this stage
    "given": (115, 115, 115),  # dark grey: supplied by the user, not used by this stage
    "done": (204, 204, 204),  # light grey: produced earlier, not used by this stage
    "todo": (255, 255, 255),  # white: not available yet
}
CHARS = {"generated": "X", "observed": "o", "given": "=", "done": "-", "todo": "."}
BACKGROUND = (247, 247, 247)
INK = (40, 40, 40)
#: Pixels between a picture's grid and its legend taken by the frame axis (ticks, numbers, "frame").
AXIS_H = 30


def cell_states(stages: Sequence[Stage], length: int, given: Iterable[int] = ()) -> list[list[str]]:
    """``states[i][f]``: the state of frame ``f`` in stage ``i`` (one of :data:`STATES`)."""
    given = set(given)
    produced: set[int] = set()
    rows = []
    for stage in stages:
        obs, lat = set(stage.observed), set(stage.latent)
        row = []
        for f in range(length):
            if f in lat:
                row.append("generated")
            elif f in obs:
                row.append("observed")
            elif f in given:
                row.append("given")
            elif f in produced:
                row.append("done")
            else:
                row.append("todo")
        rows.append(row)
        produced |= lat
    return rows


def cell_state(stages: Sequence[Stage], length: int, given: Iterable[int], row: int, frame: int) -> str:
    """The state of one cell; see :func:`cell_states`."""
    return cell_states(stages[: row + 1], length, given)[row][frame]


def ascii_plan(stages: Sequence[Stage], length: int, given: Iterable[int] = ()) -> str:
    """The plan as text, one line per stage.

    ``X`` generated, ``o`` observed, ``=`` given, ``-`` done earlier, ``.`` not yet.
    """
    width = len(str(max(len(stages) - 1, 0)))
    lines = [
        f"{i:>{width}} {''.join(CHARS[s] for s in row)}"
        for i, row in enumerate(cell_states(stages, length, given))
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class Layout:
    """Pixel geometry of a plan picture: cell ``(row, frame)`` spans ``cell_box(row, frame)``."""

    left: int
    top: int
    cell_w: int
    cell_h: int
    gap_x: int
    gap_y: int
    width: int
    height: int

    def cell_box(self, row: int, frame: int) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)``, inclusive, of the coloured part of a cell."""
        x0 = self.left + frame * self.cell_w
        y0 = self.top + row * self.cell_h
        return x0, y0, x0 + self.cell_w - 1 - self.gap_x, y0 + self.cell_h - 1 - self.gap_y


def layout(num_stages: int, length: int, max_width: int = 1200, max_height: int = 2400) -> Layout:
    """Cell sizes so the grid fits about ``max_width x max_height`` pixels (a cell is at least 1 pixel)."""
    cell_w = max(1, min(16, max_width // max(length, 1)))
    cell_h = max(1, min(16, max(cell_w, 6), max_height // max(num_stages, 1)))
    gap_x = 1 if cell_w >= 4 else 0
    gap_y = 1 if cell_h >= 4 else 0
    left, top, bottom = 44, 26, 28 + AXIS_H
    width = max(left + length * cell_w + 8, 420)
    height = top + num_stages * cell_h + bottom
    return Layout(left, top, cell_w, cell_h, gap_x, gap_y, width, height)


def tick_step(length: int, most: int = 12) -> int:
    """A round tick spacing in frames (1, 2, 5, 10, 20, 25, 50, 100, ...) with at most ``most`` intervals."""
    steps = sorted({m * 10**e for e in range(9) for m in (1, 2, 5)} | {25 * 10**e for e in range(8)})
    return next(step for step in steps if length / step <= most)


def font(size: int = 12):
    """Pillow's built-in font at ``size`` pixels (a scalable one on Pillow >= 10.1, else the small bitmap)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def draw_frame_axis(draw, geo: Layout, length: int, rows: int) -> None:
    """Under a grid of ``rows`` rows: a tick at round frame numbers (:func:`tick_step`, first and last frame
    too), the numbers under them and the axis name, so a 300-frame picture can be read frame by frame."""
    y = geo.top + rows * geo.cell_h + 2
    x_of = lambda f: geo.left + f * geo.cell_w + (geo.cell_w - 1 - geo.gap_x) // 2  # noqa: E731 - cell centre
    draw.line((geo.left, y, geo.left + length * geo.cell_w - 1, y), fill=INK)
    step = tick_step(length - 1)
    minor = step // 5 if step % 5 == 0 and step >= 5 else step // 2 if step % 2 == 0 else 0
    if minor and (length - 1) / minor <= geo.width // 4:
        for f in range(0, length, minor):
            draw.line((x_of(f), y, x_of(f), y + 2), fill=INK)
    ticks = list(range(0, length, step))
    if length - 1 - ticks[-1] >= step / 2:
        ticks.append(length - 1)
    small = font(11)
    for f in ticks:
        draw.line((x_of(f), y, x_of(f), y + 5), fill=INK)
        draw.text((x_of(f), y + 6), str(f), fill=INK, font=small, anchor="mt")
    draw.text((4, y + 6), "frame", fill=INK, font=small)


def render_plan(stages: Sequence[Stage], length: int, given: Iterable[int] = (), title: str = "", **sizes):
    """Draw the plan as a PIL RGB image (rows = stages top to bottom, columns = frames left to right),
    with stage numbers on the left, a title on top, a frame axis with ticks under the grid and a colour legend
    below.

    Args:
        stages: the plan.
        length: frames in the video.
        given: the user-supplied frames.
        title: text drawn above the grid.
        **sizes: ``max_width`` / ``max_height`` for :func:`layout`.

    Returns:
        ``PIL.Image.Image``; cell colours are :data:`COLOURS` at ``layout(...).cell_box(row, frame)``.
    """
    from PIL import Image, ImageDraw

    geo = layout(len(stages), length, **sizes)
    image = Image.new("RGB", (geo.width, geo.height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((4, 6), title, fill=INK, font=font(12))
    label_every = max(1, (12 + geo.cell_h - 1) // geo.cell_h)
    for i, row in enumerate(cell_states(stages, length, given)):
        start = 0
        for f in range(1, length + 1):  # one rectangle per run of equal cells when cells touch
            if f == length or geo.gap_x or row[f] != row[start]:
                x0, y0, _, _ = geo.cell_box(i, start)
                _, _, x1, y1 = geo.cell_box(i, f - 1)
                draw.rectangle((x0, y0, x1, y1), fill=COLOURS[row[start]])
                start = f
        if i % label_every == 0:
            draw.text((4, geo.top + i * geo.cell_h - 2), str(i), fill=INK)
    draw_frame_axis(draw, geo, length, len(stages))
    x, y = 4, geo.top + len(stages) * geo.cell_h + 8 + AXIS_H
    for state in STATES:
        draw.rectangle((x, y, x + 10, y + 10), fill=COLOURS[state], outline=INK)
        draw.text((x + 14, y), state, fill=INK)
        x += 14 + 8 * len(state) + 12
    return image
