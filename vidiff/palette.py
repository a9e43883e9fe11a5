"""The Shapes-world palette and shape names, shared by the data set and the metrics.

Kept in a module of its own (plain Python, no torch) so that `vidiff.metrics` can score generated
videos from pixels without importing the data package.
"""

from __future__ import annotations

#: Saturated RGB colours (uint8) of Shapes-world objects. The background is black (0, 0, 0).
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "magenta": (255, 0, 255),
    "cyan": (0, 255, 255),
    "white": (255, 255, 255),
}

#: Shape names, in the order used for integer shape codes.
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
