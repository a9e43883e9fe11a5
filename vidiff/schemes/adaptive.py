"""Adaptive context selection: FDM's "Ad." schemes (Harvey et al. 2022, "Optimizing the sampling scheme").

An adaptive plan fixes each stage's latent frames (those of a base scheme) but chooses its observed frames at
run time, from the frames generated so far: start from the temporally closest frame(s) (the stage's
``anchors``), then repeatedly add the available frame whose embedding is farthest from all frames chosen so
far (greedy max-min distance), so the context covers the most *different* content seen so far. FDM embeds
frames with LPIPS features; vidiff's default :func:`frame_embedding` is cheap: a block-averaged thumbnail.

The executor, before running a stage with ``stage.adaptive``, calls :func:`resolve_stage` (or
:func:`choose_observed`) with the frames available at that moment and their embeddings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._index import by_distance
from .stage import Stage, make_stage


def frame_embedding(frame: Any, size: int = 8) -> Any:
    """Cheap embedding of one frame for adaptive context selection: a ``size x size`` averaged thumbnail.

    Args:
        frame: ``(c, h, w)`` tensor (pixels in [-1, 1] or latents; any float range works).
        size: thumbnail side; the embedding has ``c * size * size`` values.

    Returns:
        ``(c * size * size,)`` float32 tensor. Squared Euclidean distance between embeddings approximates the
        mean squared pixel difference of blurred frames.
    """
    import torch
    import torch.nn.functional as F

    frame = torch.as_tensor(frame)
    if frame.dim() != 3:
        raise ValueError(f"frame: expected a (c, h, w) tensor, got shape {tuple(frame.shape)}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    thumb = F.adaptive_avg_pool2d(frame[None].float(), (size, size))  # (1, c, size, size)
    return thumb.flatten()


def choose_observed(
    latent: Sequence[int],
    available: Iterable[int],
    embeddings: Mapping[int, Any],
    max_frames: int,
    anchors: Sequence[int] = (),
) -> list[int]:
    """Choose a stage's observed frames greedily by max-min embedding distance (FDM's adaptive selection).

    Args:
        latent: the frames the stage generates (they are never chosen).
        available: frames that may be observed (given or already generated).
        embeddings: frame index -> 1-D vector (tensor, array or list), for every available frame.
        max_frames: K; at most ``max_frames - len(latent)`` frames are chosen.
        anchors: frames to take first (those that are available), e.g. a stage's temporal neighbours; when
            none is available, the available frame temporally closest to ``latent`` starts the choice.

    Returns:
        the chosen frame indices, sorted. Ties in distance go to the temporally closer frame.
    """
    import torch

    latent = list(latent)
    candidates = by_distance(set(available) - set(latent), latent)
    count = min(max_frames - len(latent), len(candidates))
    if count <= 0:
        return []
    missing = [f for f in candidates if f not in embeddings]
    if missing:
        raise ValueError(f"embeddings: no embedding for available frames {missing[:10]}")
    vectors = torch.stack([torch.as_tensor(embeddings[f], dtype=torch.float64).flatten() for f in candidates])
    position = {f: i for i, f in enumerate(candidates)}
    chosen = [position[a] for a in dict.fromkeys(anchors) if a in position][:count] or [0]
    min_dist = torch.full((len(candidates),), float("inf"), dtype=torch.float64)
    for i in chosen:
        min_dist = torch.minimum(min_dist, ((vectors - vectors[i]) ** 2).sum(dim=1))
    min_dist[chosen] = -1.0
    while len(chosen) < count:
        best = int(torch.argmax(min_dist))  # first maximum: the temporally closest among equals
        chosen.append(best)
        min_dist = torch.minimum(min_dist, ((vectors - vectors[best]) ** 2).sum(dim=1))
        min_dist[chosen] = -1.0
    return sorted(candidates[i] for i in chosen)


def resolve_stage(
    stage: Stage, available: Iterable[int], embeddings: Mapping[int, Any], max_frames: int
) -> Stage:
    """The stage to run: an adaptive stage gets its observed frames chosen now; others are returned as is."""
    if not stage.adaptive:
        return stage
    return stage.with_observed(
        choose_observed(stage.latent, available, embeddings, max_frames, stage.anchors)
    )


def _anchors(latent: list[int], done: set[int], before: int, after: int) -> list[int]:
    lo, hi = min(latent), max(latent)
    prev = sorted((f for f in done if f < lo), reverse=True)[:before]
    nxt = sorted(f for f in done if f > hi)[:after]
    return prev + nxt


def make_adaptive(stages: list[Stage], given: Iterable[int], hierarchical: bool) -> list[Stage]:
    """Mark a base plan's stages adaptive, with FDM's anchors.

    Anchors: the closest available frame (adaptive autoregressive) or the two closest before and the closest
    after the latent frames (adaptive hierarchy). A stage with no observed frames (the unconditional first
    stage) stays fixed. The default ``observed`` lists are those of the base scheme.
    """
    done = set(given)
    out = []
    for stage in stages:
        if stage.observed:
            if hierarchical:
                anchors = _anchors(stage.latent, done, before=2, after=1)
            else:
                anchors = by_distance(done, stage.latent)[:1]
            stage = make_stage(stage.observed, stage.latent, adaptive=True, anchors=sorted(anchors))
        out.append(stage)
        done.update(stage.latent)
    return out
