"""Pictures of a per-frame schedule (:class:`vidiff.schemes.levels.LevelPlan`): a heat map of its level matrix.

Rows are global steps (row ``g``: every frame's level before step ``g``; the last row is all clean), columns are
frames. A cell's colour is its noise level (:func:`level_colour`: dark = pure noise, light = clean; given frames
grey), so FIFO's diagonal, Diffusion Forcing's pyramids and rolling diffusion's slanted window are visible at a
glance. The geometry is :func:`vidiff.schemes.draw.layout`'s, as for FDM plans.
"""

from __future__ import annotations

from .draw import AXIS_H, BACKGROUND, INK, draw_frame_axis, font, layout

NOISE = (8, 29, 88)  # dark blue: the top of the ladder (pure noise)
MID = (65, 182, 196)  # teal: half way (a yellow-green-blue ramp, so no level looks like the grey of given frames)
LOW = (255, 237, 160)  # light yellow: just above clean
CLEAN_COLOUR = (255, 255, 255)
GIVEN_COLOUR = (115, 115, 115)  # as "given" in FDM plan pictures


def level_colour(level: int, num_timesteps: int) -> tuple[int, int, int]:
    """The colour of a level: white when clean (-1), else LOW -> MID -> NOISE piecewise linearly in
    ``level / (T - 1)``."""
    if level < 0:
        return CLEAN_COLOUR
    a = 2 * level / max(num_timesteps - 1, 1)
    lo, hi = (LOW, MID) if a <= 1 else (MID, NOISE)
    a = a if a <= 1 else a - 1
    return tuple(round(u + a * (v - u)) for u, v in zip(lo, hi))  # type: ignore[return-value]


def ascii_levels(plan, num_timesteps: int) -> str:
    """The level matrix as text, one line per row: ``.`` clean, ``=`` given, digit ``d`` for a level in
    ``[d, d + 1) * T / 10``."""
    given = set(plan.given)
    width = len(str(plan.steps))
    lines = []
    for g, row in enumerate(plan.levels.tolist()):
        cells = "".join("=" if f in given else "." if lv < 0 else str(min(9, lv * 10 // num_timesteps))
                        for f, lv in enumerate(row))
        lines.append(f"{g:>{width}} {cells}")
    return "\n".join(lines)


def render_levels(plan, num_timesteps: int, title: str = "", **sizes):
    """Draw the level matrix as a PIL RGB image with step numbers on the left, a title, a frame axis with
    ticks and a colour legend.

    Cell ``(g, f)`` is filled with ``level_colour(plan.levels[g, f])`` (given frames :data:`GIVEN_COLOUR`) at
    ``layout(plan.steps + 1, plan.length, **sizes).cell_box(g, f)``.
    """
    from PIL import Image, ImageDraw

    rows = plan.levels.tolist()
    geo = layout(len(rows), plan.length, **sizes)
    image = Image.new("RGB", (geo.width, geo.height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((4, 6), title, fill=INK, font=font(12))
    given = set(plan.given)
    label_every = max(1, (12 + geo.cell_h - 1) // geo.cell_h)
    for g, row in enumerate(rows):
        for f, lv in enumerate(row):
            draw.rectangle(geo.cell_box(g, f), fill=GIVEN_COLOUR if f in given else level_colour(lv, num_timesteps))
        if g % label_every == 0:
            draw.text((4, geo.top + g * geo.cell_h - 2), str(g), fill=INK)
    draw_frame_axis(draw, geo, plan.length, len(rows))
    x, y = 4, geo.top + len(rows) * geo.cell_h + 8 + AXIS_H
    for label, colour in (("given", GIVEN_COLOUR), ("clean", CLEAN_COLOUR),
                          ("low noise", level_colour(0, num_timesteps)),
                          ("pure noise", level_colour(num_timesteps - 1, num_timesteps))):
        draw.rectangle((x, y, x + 10, y + 10), fill=colour, outline=INK)
        draw.text((x + 14, y), label, fill=INK)
        x += 14 + 8 * len(label) + 12
    return image
