"""Small helpers shared by the diffusion core: rank-free broadcasting and argument checks."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def append_dims(x: torch.Tensor, target_ndim: int) -> torch.Tensor:
    """Appends trailing singleton dimensions until ``x`` has ``target_ndim`` dimensions (k-diffusion).

    Args:
        x: A tensor, typically per-sample values of shape ``(b,)``.
        target_ndim: The rank to broadcast against, e.g. 5 for a video ``(b, t, c, h, w)``.

    Returns:
        A view of ``x`` with shape ``x.shape + (1,) * (target_ndim - x.ndim)``.
    """
    missing = target_ndim - x.ndim
    if missing < 0:
        raise ValueError(f"append_dims: x has {x.ndim} dims, more than target_ndim={target_ndim}")
    return x[(...,) + (None,) * missing]


def check_choice(argument: str, value: object, choices: Sequence[object]) -> None:
    """Raises ValueError naming ``argument`` and listing the valid ``choices`` if ``value`` is not one of them."""
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{argument} must be one of {valid}; got {value!r}")


def check_same_shape(argument: str, tensor: torch.Tensor, expected: torch.Size, against: str) -> None:
    """Raises ValueError if ``tensor.shape != expected``, naming both arguments and both shapes."""
    if tuple(tensor.shape) != tuple(expected):
        raise ValueError(
            f"{argument} must have the same shape as {against}: expected {tuple(expected)}, got {tuple(tensor.shape)}"
        )


def check_broadcastable(argument: str, tensor: torch.Tensor, target: torch.Size, against: str) -> None:
    """Raises ValueError unless ``tensor`` has ``target``'s rank and broadcasts to ``target`` without growing it.

    The same rank is required so that a per-sample ``(b,)`` tensor is never silently broadcast against the last axis.
    """
    ok = tensor.ndim == len(target)
    if ok:
        try:
            ok = tuple(torch.broadcast_shapes(tensor.shape, target)) == tuple(target)
        except RuntimeError:
            ok = False
    if not ok:
        raise ValueError(
            f"{argument} must have the rank of {against} and broadcast to its shape {tuple(target)} "
            f"(use size-1 axes, e.g. append_dims); got shape {tuple(tensor.shape)}"
        )
