"""Find Shapes-world objects in pixels: colour, centre, area, bounding box and shape of every object per frame.

The Shapes world (``vidiff.data.shapes``) draws 1-3 objects, each with its own colour from
:data:`vidiff.palette.PALETTE`, on a black background; later objects cover earlier ones. Generated frames are
noisy, blurred and off-colour, so detection goes by *chromaticity*, not exact RGB values:

1. A pixel is foreground when its brightness ``v = max(r, g, b)`` (in [0, 1]) is at least ``min_brightness``.
2. Its chromaticity ``rgb / v`` is compared with each palette colour's ``c / max(c)``; the nearest colour wins if
   it is within ``chroma_tol`` (Euclidean), else the pixel is left unassigned. Blur against the black
   background only scales a colour, so dim edge pixels keep their hue (a half-bright yellow stays yellow, where
   nearest-RGB matching would call it red), and white (all channels on) is never confused with a sum of objects.
3. Pixels of one colour are grouped into 8-connected components; components smaller than ``min_area`` pixels
   are noise and dropped. By default (``merge_same_colour=True``, right for the Shapes world, whose objects have
   distinct colours) the remaining components of a colour form one object, so an object split in two by a
   smaller one drawn over it still counts once.

Coordinates follow the data set: pixel ``(row i, column j)`` covers ``[j, j+1) x [i, i+1)``, so its centre is
``(x, y) = (j + 0.5, i + 0.5)``. An object's centre is the centroid of its pixels, except for triangles (apex
up), whose centroid lies a sixth of the box height below the box centre the data set reports; that offset is
removed. Shapes are classified from the fill ratio of the bounding box (square ~1, circle ~pi/4, triangle ~1/2),
the centroid's offset below the box centre (triangles only) and the filled box corners (squares only).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vidiff.palette import PALETTE, SHAPES

__all__ = [
    "COLOUR_NAMES",
    "Detection",
    "VideoDetections",
    "classify_pixels",
    "classify_shape",
    "detect_objects",
]

#: Colour names in palette order (the label index used by :func:`classify_pixels`).
COLOUR_NAMES: tuple[str, ...] = tuple(PALETTE)

#: Shape rule thresholds (calibrated on rendered Shapes-world frames at 32x32, hard and antialiased edges).
TRIANGLE_OFFSET = 0.08  # centroid below the box centre, in box heights: triangles 0.10-0.17, others <= 0.05
TRIANGLE_FILL = 0.6  # fill below this is a triangle (triangles 0.50-0.73, circles >= 0.64)
SQUARE_FILL = 0.95  # fill at or above this is a square (squares 0.92-1, circles <= 0.92)


def classify_shape(fill: float, offset: float = 0.0, corners: int = 0) -> str:
    """Shape name from pixel statistics of one object (its bounding box is axis-aligned, triangles apex up).

    Rule: a triangle when ``offset > 0.08`` or ``fill < 0.6``; else a square when ``fill >= 0.95`` or at least
    3 of the 4 box corners are object pixels; else a circle.

    Args:
        fill: ``area / bbox area`` (square 1, circle pi/4 ~ 0.785, triangle 1/2).
        offset: ``(centroid_y - box centre_y) / box height`` (triangle ~1/6, circle and square 0).
        corners: how many of the 4 bounding-box corner pixels belong to the object.
    """
    if offset > TRIANGLE_OFFSET or fill < TRIANGLE_FILL:
        return SHAPES[2]
    if fill >= SQUARE_FILL or corners >= 3:
        return SHAPES[1]
    return SHAPES[0]


@dataclass(frozen=True)
class Detection:
    """One object found in one frame.

    Attributes:
        colour: palette colour name.
        centre: ``(x, y)`` in pixels (pixel centres at ``j + 0.5, i + 0.5``).
        area: number of pixels.
        bbox: ``(x0, y0, x1, y1)`` inclusive pixel column/row indices.
        shape: shape name from :func:`classify_shape`.
    """

    colour: str
    centre: tuple[float, float]
    area: int
    bbox: tuple[int, int, int, int]
    shape: str

    @property
    def fill(self) -> float:
        """``area / bbox area`` (1 for a square, ~0.785 for a circle, ~0.5 for a triangle)."""
        x0, y0, x1, y1 = self.bbox
        return self.area / ((x1 - x0 + 1) * (y1 - y0 + 1))


@dataclass(frozen=True)
class VideoDetections:
    """The detections of every frame of one video, with the frame size (walls for motion scores).

    Attributes:
        frames: per frame, the detections (sorted by colour name).
        height: frame height in pixels.
        width: frame width in pixels.
    """

    frames: tuple[tuple[Detection, ...], ...]
    height: int
    width: int

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, t: int) -> tuple[Detection, ...]:
        return self.frames[t]

    def colours(self, t: int) -> tuple[str, ...]:
        """Sorted colour names found in frame ``t`` (repeats kept when colours are not merged)."""
        return tuple(sorted(d.colour for d in self.frames[t]))

    def find(self, t: int, colour: str) -> list[Detection]:
        """Detections of ``colour`` in frame ``t``."""
        return [d for d in self.frames[t] if d.colour == colour]


def _palette_chroma(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    rgb = torch.tensor([PALETTE[c] for c in COLOUR_NAMES], dtype=dtype, device=device)  # (k, 3)
    return rgb / rgb.amax(dim=1, keepdim=True)


def classify_pixels(
    frames: torch.Tensor,
    *,
    value_range: tuple[float, float] = (-1.0, 1.0),
    min_brightness: float = 0.4,
    chroma_tol: float = 0.35,
) -> torch.Tensor:
    """Palette label of every pixel by chromaticity (module docstring, steps 1-2).

    Args:
        frames: ``(n, 3, h, w)`` RGB frames in ``value_range``.
        value_range: ``(lo, hi)`` of the frames.
        min_brightness: least ``max(r, g, b)`` in [0, 1] of a foreground pixel.
        chroma_tol: largest chromaticity distance to the nearest palette colour.

    Returns:
        ``(n, h, w)`` long: index into :data:`COLOUR_NAMES`, or -1 for background / unassigned pixels.
    """
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames: expected RGB frames (n, 3, h, w), got {tuple(frames.shape)}")
    lo, hi = (float(v) for v in value_range)
    rgb = ((frames.float() - lo) / (hi - lo)).clamp(0, 1)
    v = rgb.amax(dim=1)  # (n, h, w)
    chroma = rgb / v.clamp(min=1e-6)[:, None]
    pal = _palette_chroma(rgb.dtype, rgb.device)  # (k, 3)
    dist = (chroma[:, None] - pal[None, :, :, None, None]).pow(2).sum(dim=2).sqrt()  # (n, k, h, w)
    best, label = dist.min(dim=1)
    keep = (v >= min_brightness) & (best <= chroma_tol)
    return torch.where(keep, label, torch.full_like(label, -1))


def _components(masks: torch.Tensor) -> torch.Tensor:
    """8-connected component ids of boolean planes ``(p, h, w)`` -> long ``(p, h, w)`` (0 = off, ids > 0)."""
    _, h, w = masks.shape
    m = masks[:, None].float()
    ids = (
        torch.arange(1, h * w + 1, dtype=torch.float32, device=masks.device).view(1, 1, h, w) * m
    ).contiguous()
    while True:  # propagate the largest id through each component; converges in <= its diameter steps
        new = F.max_pool2d(ids, 3, stride=1, padding=1) * m
        if torch.equal(new, ids):
            return ids[:, 0].long()
        ids = new


def _describe(
    labels: torch.Tensor, col: int, cx: float, cy: float, bbox: tuple[int, int, int, int], area: int
) -> tuple[tuple[float, float], str]:
    """Shape and box centre of one object from its centroid, box and the frame's labels ``(h, w)``."""
    x0, y0, x1, y1 = bbox
    box_h = y1 - y0 + 1
    fill = area / ((x1 - x0 + 1) * box_h)
    offset = (cy - (y0 + y1 + 1) / 2) / box_h
    corners = int((labels[[y0, y0, y1, y1], [x0, x1, x0, x1]] == col).sum())
    shape = classify_shape(fill, offset, corners)
    if shape == SHAPES[2]:  # a triangle's centroid lies 1/6 of the box height below the box centre
        cy -= box_h / 6
    return (cx, cy), shape


def detect_objects(
    video: torch.Tensor,
    *,
    value_range: tuple[float, float] = (-1.0, 1.0),
    min_brightness: float = 0.4,
    chroma_tol: float = 0.35,
    min_area: int | None = None,
    merge_same_colour: bool = True,
) -> VideoDetections:
    """Detect the objects of every frame of one video (steps in the module docstring).

    Args:
        video: ``(t, 3, h, w)`` RGB frames in ``value_range``.
        value_range: ``(lo, hi)`` of the frames.
        min_brightness: least ``max(r, g, b)`` in [0, 1] of a foreground pixel.
        chroma_tol: largest chromaticity distance to the nearest palette colour.
        min_area: smallest component kept, in pixels (``None``: 0.4% of the frame, at least 3: 4 px at 32x32).
        merge_same_colour: one object per colour per frame (the Shapes world's colours are distinct).

    Returns:
        :class:`VideoDetections` with ``t`` frames.
    """
    if video.ndim != 4 or video.shape[1] != 3:
        raise ValueError(f"video: expected one RGB video (t, 3, h, w), got {tuple(video.shape)}")
    video = video.detach().cpu()  # detection is cheap and runs on the CPU whatever the video's device
    t, _, h, w = video.shape
    if min_area is None:
        min_area = max(3, round(0.004 * h * w))
    labels = classify_pixels(
        video, value_range=value_range, min_brightness=min_brightness, chroma_tol=chroma_tol
    )
    k = len(COLOUR_NAMES)
    planes = labels[:, None] == torch.arange(k, device=labels.device)[None, :, None, None]  # (t, k, h, w)
    planes = planes.reshape(t * k, h, w)
    used = planes.flatten(1).any(dim=1).nonzero().flatten()  # plane index = frame * k + colour
    frames: list[list[Detection]] = [[] for _ in range(t)]
    if used.numel():
        ids = _components(planes[used])  # (p, h, w)
        hw1 = h * w + 1
        pidx, yy, xx = ids.nonzero(as_tuple=True)
        keys, inverse, area = torch.unique(
            pidx * hw1 + ids[pidx, yy, xx], return_inverse=True, return_counts=True
        )
        n = keys.numel()
        sum_x = torch.zeros(n, dtype=torch.float64).index_add_(0, inverse, xx.double())
        sum_y = torch.zeros(n, dtype=torch.float64).index_add_(0, inverse, yy.double())
        big = torch.full((n,), h * w, dtype=torch.long)
        x0 = big.scatter_reduce(0, inverse, xx, "amin")
        y0 = big.scatter_reduce(0, inverse, yy, "amin")
        x1 = torch.full((n,), -1, dtype=torch.long).scatter_reduce(0, inverse, xx, "amax")
        y1 = torch.full((n,), -1, dtype=torch.long).scatter_reduce(0, inverse, yy, "amax")
        plane = used[keys // hw1]
        groups: dict[tuple[int, int], list[int]] = {}
        for c in (area >= min_area).nonzero().flatten().tolist():
            f, col = divmod(int(plane[c]), k)
            groups.setdefault((f, col), []).append(c)
        for (f, col), comps in sorted(groups.items()):
            parts = [comps] if merge_same_colour else [[c] for c in comps]
            for part in parts:
                a = int(area[part].sum())
                bbox = (int(x0[part].min()), int(y0[part].min()), int(x1[part].max()), int(y1[part].max()))
                cx = float(sum_x[part].sum()) / a + 0.5
                cy = float(sum_y[part].sum()) / a + 0.5
                centre, shape = _describe(labels[f], col, cx, cy, bbox, a)
                frames[f].append(Detection(COLOUR_NAMES[col], centre, a, bbox, shape))
    ordered = tuple(tuple(sorted(ds, key=lambda d: (d.colour, d.centre))) for ds in frames)
    return VideoDetections(frames=ordered, height=h, width=w)
