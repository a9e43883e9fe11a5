"""Ground truth for evaluation: a held-out split of the Shapes world the model was trained on.

The world's parameters (object counts, speeds, sizes, seed, antialiasing) come from the checkpoint's data module
(``datamodule_hyper_parameters`` of a ``vidiff fit`` checkpoint trained on ``ShapesDataModule``), or from the
defaults at the model's image size. Evaluation videos are the indices right after the training and validation
videos (``index_offset = train_videos + val_videos + offset``): the same world, never seen in training.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from vidiff.data.shapes import ShapesWorld
from vidiff.masks import FrameMaskSampler

log = logging.getLogger(__name__)

__all__ = ["GroundTruth", "WORLD_KEYS", "world_settings", "checkpoint_world_settings", "eval_world", "ground_truth"]

#: ShapesDataModule settings that define the world (the rest are loader settings).
WORLD_KEYS = ("image_size", "min_objects", "max_objects", "speed", "size", "antialias", "seed")


@dataclass(frozen=True)
class GroundTruth:
    """Ground-truth videos with their objects.

    Attributes:
        videos: ``(n, T, 3, h, w)`` frames in [-1, 1].
        centres: per video, ``(m_i, T, 2)`` float64 pixel ``(x, y)`` centres of its ``m_i`` objects.
        colours: per video, the objects' colour names.
        captions: per video, the caption ("a red circle and a blue square").
        indices: per video, its index in the evaluation world.
    """

    videos: torch.Tensor
    centres: list[torch.Tensor]
    colours: list[list[str]]
    captions: list[str]
    indices: list[int]

    def __len__(self) -> int:
        return self.videos.shape[0]


def world_settings(data_hparams: Mapping[str, Any] | None, image_size: int) -> dict[str, Any]:
    """Shapes-world settings from a data module's hyperparameters (None: defaults), at the model's image size.

    Returns:
        dict with :data:`WORLD_KEYS` (only those given) plus ``split_offset`` = ``train_videos + val_videos``.
    """
    hp = dict(data_hparams or {})
    out = {k: hp[k] for k in WORLD_KEYS if hp.get(k) is not None}
    if "image_size" in out and out["image_size"] != image_size:
        log.warning("data image_size %s differs from the model's %s; using the model's", out["image_size"], image_size)
    out["image_size"] = image_size
    for key in ("speed", "size"):
        if key in out:
            out[key] = tuple(float(v) for v in out[key])
    out["split_offset"] = int(hp.get("train_videos", 10000)) + int(hp.get("val_videos", 64))
    return out


def checkpoint_world_settings(ckpt_path: str | os.PathLike, image_size: int) -> dict[str, Any]:
    """:func:`world_settings` from a checkpoint's stored data module hyperparameters (weights are not used).

    A checkpoint without data hyperparameters, or trained on another data module, gets the default world (with a
    warning in the second case).
    """
    from vidiff.io.checkpoint import read_checkpoint

    ckpt = read_checkpoint(ckpt_path)
    hp = ckpt.get("datamodule_hyper_parameters") if isinstance(ckpt, dict) else None
    if hp is not None:
        name = str(ckpt.get("datamodule_hparams_name") or "") + str(hp.get("_class_path", ""))
        if "root" in hp and "min_objects" not in hp:
            log.warning("checkpoint was trained on a video folder (%s); evaluating on the default Shapes world", name)
            hp = None
    return world_settings(hp, image_size)


def eval_world(settings: Mapping[str, Any], num_videos: int, length: int, offset: int = 0) -> ShapesWorld:
    """The evaluation split: ``num_videos`` videos after the training and validation ones (plus ``offset``).

    Args:
        settings: from :func:`world_settings`.
        num_videos: videos in the split.
        length: T (frames rendered per video).
        offset: extra index shift (another evaluation split of the same world).
    """
    if offset < 0:
        raise ValueError(f"offset: expected >= 0, got {offset}")
    world = {k: v for k, v in settings.items() if k != "split_offset"}
    sampler = FrameMaskSampler(2, tasks={"unconditional": 1.0})  # unused for rendering; ShapesWorld checks its length against it
    return ShapesWorld(
        num_videos=num_videos, length=max(length, sampler.min_length()), index_offset=int(settings.get("split_offset", 0)) + offset,
        sampler=sampler, **world,
    )


def ground_truth(world: ShapesWorld, length: int, num_videos: int | None = None) -> GroundTruth:
    """Render the first ``num_videos`` (default all) videos of ``world`` at frames ``0 .. length-1``."""
    n = len(world) if num_videos is None else num_videos
    if not 1 <= n <= len(world):
        raise ValueError(f"num_videos: expected 1 .. {len(world)}, got {n}")
    frames = list(range(length))
    videos, centres, colours, captions = [], [], [], []
    for i in range(n):
        videos.append(world.render(i, frames))
        tracks = world.tracks(i, frames)
        centres.append(tracks.centers.double())
        colours.append(list(tracks.colors))
        captions.append(world.caption(i))
    return GroundTruth(torch.stack(videos), centres, colours, captions, list(range(n)))
