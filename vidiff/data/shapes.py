"""Shapes world: procedurally generated videos of bouncing coloured shapes (the built-in data set).

Every video is a pure function of ``(seed, index)``. Objects move at constant velocity and bounce elastically
off the walls, so positions are computed analytically at any frame (a triangle-wave fold of ``p0 + v * t``
between the wall limits): frame 10,000 costs what frame 0 costs, and only requested frames are rendered.

Coordinates: pixel ``(row i, column j)`` covers ``[j, j+1) x [i, i+1)`` and is sampled at its centre
``(j + 0.5, i + 0.5)``. An object of size ``s`` (pixels) centred at ``(x, y)`` covers the box
``[x - s, x + s] x [y - s, y + s]``: a circle of radius s, a square of half-side s, or an upward triangle with
apex ``(x, y - s)`` and base ``y + s`` from ``x - s`` to ``x + s``. The centre stays in ``[s, W - s]``, so
objects never leave the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from vidiff.arguments import check_int
from vidiff.masks import FrameMaskSampler
from vidiff.palette import PALETTE, SHAPES

from .sampling import STREAM_MASK, pad_bool, pad_frame_idx, sample_generator, split_key

COLOR_NAMES: tuple[str, ...] = tuple(PALETTE)
_COLOR_TABLE = torch.tensor([PALETTE[c] for c in COLOR_NAMES], dtype=torch.uint8)  # (n_colors, 3)


@dataclass(frozen=True)
class Scene:
    """The attributes of one video's objects, in draw order (later objects are drawn on top).

    Attributes:
        start: (n, 2) float64 (x, y) centres at frame 0.
        velocity: (n, 2) float64 pixels per frame.
        sizes: (n,) float64 half-extent s of each object in pixels.
        colors: (n,) int codes into ``PALETTE`` order (distinct within a video).
        shapes: (n,) int codes into ``SHAPES``.
    """

    start: np.ndarray
    velocity: np.ndarray
    sizes: np.ndarray
    colors: np.ndarray
    shapes: np.ndarray


@dataclass(frozen=True)
class Tracks:
    """Ground truth of a video at the requested frames.

    Attributes:
        centers: (n, k, 2) float (x, y) pixel centres of the n objects at the k frames.
        colors: colour names, length n (``PALETTE`` keys).
        shapes: shape names, length n (``SHAPES`` entries).
        sizes: (n,) float half-extent of each object in pixels.
        color_codes: (n,) long indices into ``PALETTE`` order.
        shape_codes: (n,) long indices into ``SHAPES``.
    """

    centers: torch.Tensor
    colors: list[str]
    shapes: list[str]
    sizes: torch.Tensor
    color_codes: torch.Tensor
    shape_codes: torch.Tensor


def fold(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Reflect unbounded positions ``p`` into ``[lo, hi]`` (elastic bounces): a triangle wave of period 2L."""
    length = hi - lo
    safe = np.where(length > 0, length, 1.0)
    u = np.mod(p - lo, 2 * safe)
    return np.where(length > 0, lo + np.where(u <= safe, u, 2 * safe - u), lo)


def caption_of(colors: list[str], shapes: list[str]) -> str:
    """The caption: "a red circle", "a red circle and a blue square", "a red circle, a blue square and a
    green triangle"."""
    parts = [f"a {c} {s}" for c, s in zip(colors, shapes)]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


class ShapesWorld(Dataset):
    """Bouncing coloured shapes on black, deterministic per ``(seed, index)``.

    Args:
        num_videos: number of videos (the data set length).
        length: T, frames per video from which training frames are drawn (any T >= 1; rendering cost does
            not depend on the frame index).
        image_size: frame height and width in pixels.
        min_objects, max_objects: object count range per video (1 <= min <= max <= number of colours: every
            object of a video has its own colour).
        speed: (min, max) speed in pixels per frame; directions are uniform.
        size: (min, max) object half-extent in pixels; None scales (3, 6) px at 32 px with ``image_size``.
        seed: world seed.
        index_offset: added to every index (disjoint worlds share a seed, e.g. a validation split).
        antialias: supersampling factor per axis (1 = off: colours are exact palette values).
        sampler: frame-mask sampler (default ``FrameMaskSampler(8)``); k = ``sampler.max_frames``.

    ``dataset[i]`` and ``dataset[(epoch, i)]`` return the sample dict described in docs/data.md.
    """

    def __init__(
        self,
        num_videos: int = 10000,
        length: int = 64,
        image_size: int = 32,
        min_objects: int = 1,
        max_objects: int = 3,
        speed: tuple[float, float] = (0.5, 2.0),
        size: tuple[float, float] | None = None,
        seed: int = 0,
        index_offset: int = 0,
        antialias: int = 1,
        sampler: FrameMaskSampler | None = None,
    ) -> None:
        for name, value in (("num_videos", num_videos), ("length", length), ("image_size", image_size)):
            check_int(name, value)
        if not 1 <= min_objects <= max_objects <= len(COLOR_NAMES):
            raise ValueError(
                f"min_objects, max_objects: expected 1 <= min_objects <= max_objects <= {len(COLOR_NAMES)} "
                f"(one palette colour per object), got {min_objects}, {max_objects}"
            )
        speed = tuple(float(v) for v in speed)
        if len(speed) != 2 or not 0 <= speed[0] <= speed[1]:
            raise ValueError(f"speed: expected (min, max) pixels/frame with 0 <= min <= max, got {speed}")
        if size is None:
            size = (3.0 * image_size / 32, 6.0 * image_size / 32)
        size = tuple(float(v) for v in size)
        if len(size) != 2 or not 0 < size[0] <= size[1] or 2 * size[1] > image_size:
            raise ValueError(f"size: expected (min, max) with 0 < min <= max <= image_size/2, got {size}")
        check_int("antialias", antialias, note=" (1 = off)")
        self.sampler = sampler if sampler is not None else FrameMaskSampler(8)
        if length < self.sampler.min_length():
            raise ValueError(
                f"length: expected at least {self.sampler.min_length()} frames for the mask tasks, "
                f"got {length}"
            )
        self.num_videos, self.length, self.image_size = num_videos, length, image_size
        self.min_objects, self.max_objects = min_objects, max_objects
        self.speed, self.size, self.seed = speed, size, seed
        self.index_offset, self.antialias = index_offset, antialias

    def __len__(self) -> int:
        return self.num_videos

    @property
    def max_frames(self) -> int:
        """k, the number of frame slots in every sample."""
        return self.sampler.max_frames

    # ----------------------------------------------------------------------------------------------- scene
    def scene(self, index: int) -> Scene:
        """The objects of video ``index`` (deterministic per ``(seed, index)``)."""
        if not 0 <= index < self.num_videos:
            raise IndexError(f"index: expected 0 <= index < {self.num_videos}, got {index}")
        rng = np.random.default_rng([int(self.seed) & 0xFFFFFFFF, index + self.index_offset, 0x5A])
        n = int(rng.integers(self.min_objects, self.max_objects + 1))
        colors = rng.permutation(len(COLOR_NAMES))[:n]
        shapes = rng.integers(0, len(SHAPES), n)
        sizes = rng.uniform(self.size[0], self.size[1], n)
        start = rng.uniform(sizes[:, None], self.image_size - sizes[:, None], (n, 2))
        angle = rng.uniform(0, 2 * math.pi, n)
        speed = rng.uniform(self.speed[0], self.speed[1], n)
        velocity = np.stack([np.cos(angle), np.sin(angle)], axis=1) * speed[:, None]
        return Scene(start=start, velocity=velocity, sizes=sizes, colors=colors, shapes=shapes)

    def _centers(self, scene: Scene, frame_idx: torch.Tensor) -> np.ndarray:
        """(n, k, 2) float64 centres at ``frame_idx`` (analytic, exact for any frame index)."""
        t = np.asarray(torch.as_tensor(frame_idx).tolist(), dtype=np.float64)  # (k,)
        p = scene.start[:, None, :] + scene.velocity[:, None, :] * t[None, :, None]  # (n, k, 2)
        lo = scene.sizes[:, None, None]
        return fold(p, lo, self.image_size - lo)

    def tracks(self, index: int, frame_idx: torch.Tensor | list[int]) -> Tracks:
        """Ground truth at ``frame_idx`` (k,): centres (n, k, 2) pixel (x, y), colours, shapes, sizes."""
        scene = self.scene(index)
        return Tracks(
            centers=torch.from_numpy(self._centers(scene, torch.as_tensor(frame_idx))).float(),
            colors=[COLOR_NAMES[c] for c in scene.colors],
            shapes=[SHAPES[s] for s in scene.shapes],
            sizes=torch.from_numpy(scene.sizes).float(),
            color_codes=torch.from_numpy(scene.colors).long(),
            shape_codes=torch.from_numpy(scene.shapes).long(),
        )

    def caption(self, index: int) -> str:
        """The caption built from the attributes, e.g. "a red circle and a blue square"."""
        scene = self.scene(index)
        return caption_of([COLOR_NAMES[c] for c in scene.colors], [SHAPES[s] for s in scene.shapes])

    # ---------------------------------------------------------------------------------------------- render
    def render(self, index: int, frame_idx: torch.Tensor | list[int]) -> torch.Tensor:
        """Frames of video ``index`` at ``frame_idx`` (k,) -> (k, 3, h, w) float in [-1, 1]."""
        scene = self.scene(index)
        centers = torch.from_numpy(self._centers(scene, torch.as_tensor(frame_idx))).float()  # (n, k, 2)
        ss = self.antialias
        side = self.image_size * ss
        coords = (torch.arange(side, dtype=torch.float32) + 0.5) / ss  # pixel-centre coordinates
        k = centers.shape[1]
        frames = torch.zeros(k, 3, side, side, dtype=torch.float32)
        for i, (shape, color) in enumerate(zip(scene.shapes, scene.colors)):
            s = float(scene.sizes[i])
            dx = coords[None, None, :] - centers[i, :, 0, None, None]  # (k, 1, w)
            dy = coords[None, :, None] - centers[i, :, 1, None, None]  # (k, h, 1)
            if shape == 0:  # circle
                mask = dx**2 + dy**2 <= s * s
            elif shape == 1:  # square
                mask = (dx.abs() <= s) & (dy.abs() <= s)
            else:  # triangle, apex up
                mask = (dy <= s) & (dx.abs() <= (dy + s) / 2)
            rgb = _COLOR_TABLE[int(color)].float()[None, :, None, None]  # (1, 3, 1, 1)
            frames = torch.where(mask[:, None], rgb, frames)  # mask: (k, h, w)
        if ss > 1:
            frames = F.avg_pool2d(frames, ss)
        return frames / 127.5 - 1.0

    # ---------------------------------------------------------------------------------------------- sample
    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        """The sample for ``index`` or ``(epoch, index)``: frames the mask sampler chose, and ground truth.

        Returns:
            dict with "video" (k, 3, h, w), "frame_idx" (k,), "observed" (k,), "valid" (k,), "caption", and
            the tracks padded to ``max_objects``: "centers" (n_max, k, 2), "object_valid" (n_max,),
            "colors" (n_max,), "shapes" (n_max,) long (-1 where padded), "sizes" (n_max,), plus "index" ().
        """
        epoch, index = split_key(key)
        if not 0 <= index < self.num_videos:
            raise IndexError(f"index: expected 0 <= index < {self.num_videos}, got {index}")
        generator = sample_generator(self.seed, epoch, index + self.index_offset, STREAM_MASK)
        mask = self.sampler(self.length, generator)
        k, n = self.max_frames, len(mask)
        frame_idx = pad_frame_idx(mask.frame_idx, k)
        video = torch.zeros(k, 3, self.image_size, self.image_size)
        video[:n] = self.render(index, mask.frame_idx)
        tracks = self.tracks(index, frame_idx)
        m, n_max = len(tracks.colors), self.max_objects
        centers = torch.zeros(n_max, k, 2)
        centers[:m] = tracks.centers
        return {
            "video": video,
            "frame_idx": frame_idx,
            "observed": pad_bool(mask.observed, k),
            "valid": pad_bool(torch.ones(n, dtype=torch.bool), k),
            "caption": self.caption(index),
            "index": torch.tensor(index),
            "centers": centers,
            "object_valid": pad_bool(torch.ones(m, dtype=torch.bool), n_max),
            "colors": torch.cat([tracks.color_codes, torch.full((n_max - m,), -1)]),
            "shapes": torch.cat([tracks.shape_codes, torch.full((n_max - m,), -1)]),
            "sizes": torch.cat([tracks.sizes, torch.zeros(n_max - m)]),
        }
