"""Training-time frame masks in the style of Flexible Diffusion Models (Harvey et al. 2022).

Per training sample, a :class:`FrameMaskSampler` picks up to ``max_frames`` (K) frame positions out of a
video of length T and splits them into *observed* frames (given to the network clean) and *latent* frames
(noised; the loss covers them only). Positions are chosen as a union of evenly spaced groups whose spacing is
log-uniform (FDM's ``sample_some_indices``), so the model sees both neighbouring frames and frames hundreds of
steps apart; the split follows a task drawn from a configurable mixture:

``unconditional``
    nothing observed.
``prediction``
    the first m chosen frames are observed, the rest latent (future prediction).
``past_prediction``
    the last m chosen frames are observed (prediction backwards in time).
``interpolation``
    observed frames at both ends (at least one on each side), latent frames in between.
``arbitrary``
    a uniformly random subset of the chosen frames is observed.

Plain torch: this module never imports Lightning or ``vidiff.data``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from vidiff.arguments import check_int

#: Task names accepted by :class:`FrameMaskSampler`, in a fixed order.
MASK_TASKS: tuple[str, ...] = ("unconditional", "prediction", "past_prediction", "interpolation", "arbitrary", "fdm")

#: The default task mixture (weights, normalised when sampling).
DEFAULT_MASK_TASKS: dict[str, float] = {
    "unconditional": 0.1,
    "prediction": 0.35,
    "past_prediction": 0.1,
    "interpolation": 0.2,
    "arbitrary": 0.25,
}

#: Ways of choosing frame positions.
FRAME_SPACINGS: tuple[str, ...] = ("log_uniform", "uniform", "contiguous")


@dataclass(frozen=True)
class FrameMask:
    """The frames chosen for one training sample.

    Attributes:
        frame_idx: LongTensor (n,), sorted, unique positions in ``[0, video_length)``.
        observed: BoolTensor (n,), True where the frame is given clean to the network.
        task: the task that produced the split (one of :data:`MASK_TASKS`).
    """

    frame_idx: torch.Tensor
    observed: torch.Tensor
    task: str = "arbitrary"

    @property
    def latent(self) -> torch.Tensor:
        """BoolTensor (n,): the frames to generate (the complement of ``observed``)."""
        return ~self.observed

    def __len__(self) -> int:
        return int(self.frame_idx.numel())


def _randint(low: int, high: int, generator: torch.Generator | None) -> int:
    """A uniform integer in ``[low, high]`` (both ends included)."""
    return int(torch.randint(low, high + 1, (), generator=generator))


def _check_weights(key: str, weights: Mapping[str, float], names: tuple[str, ...], noun: str) -> dict[str, float]:
    """A mapping name -> weight, checked: known names, finite weights >= 0, at least one positive."""
    weights = dict(weights)
    for name, weight in weights.items():
        if name not in names:
            raise ValueError(f"{key}: unknown {noun} {name!r}; valid names are {list(names)}")
        if not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"{key}[{name!r}]: expected a finite weight >= 0, got {weight!r}")
    if sum(weights.values()) <= 0:
        raise ValueError(f"{key}: expected at least one positive weight, got {weights}")
    return weights


def _choose(names: list[str], weights: Mapping[str, float], generator: torch.Generator | None) -> str:
    """One of ``names``, drawn with probability proportional to its weight."""
    w = torch.tensor([weights[name] for name in names], dtype=torch.float64)
    return names[int(torch.multinomial(w, 1, generator=generator))]


def _rand(generator: torch.Generator | None) -> float:
    return float(torch.rand((), generator=generator, dtype=torch.float64))


class FrameMaskSampler:
    """Draws FDM-style observed/latent frame sets for training.

    Args:
        max_frames: K, the most frames per sample (the network's frame budget); at least 2.
        tasks: task name -> non-negative weight (see :data:`MASK_TASKS`); missing names get weight 0.
            None uses :data:`DEFAULT_MASK_TASKS`. ``"fdm"`` is FDM's own ``sample_all_masks`` distribution
            (:meth:`fdm_mask`): it chooses frames and split together, ignores ``spacing`` and ``max_observed``,
            and often uses fewer than ``max_frames`` frames (the free slots are padding: ``valid`` False).
        max_observed: the most observed frames per sample (default ``max_frames - min_latent``).
        min_latent: the fewest latent frames per sample (at least 1).
        spacing: ``"log_uniform"`` (FDM: union of evenly spaced groups with log-uniform spacing, so both close
            and far-apart frames are seen), ``"uniform"`` (a uniformly random subset of all T frames),
            ``"contiguous"`` (K consecutive frames at a random start), or a mixture of these as a mapping
            name -> weight, drawn per sample (e.g. ``{"contiguous": 0.5, "log_uniform": 0.5}``: consecutive
            frames teach the model to copy its context fast, spaced ones keep long-range schemes working).

    Calling ``sampler(video_length, generator)`` returns a :class:`FrameMask` with
    ``n = min(max_frames, video_length)`` frames (at most that many for the ``"fdm"`` task). Tasks that cannot be met for a short video (e.g.
    interpolation needs at least ``2 + min_latent`` frames) are left out of the mixture for that draw; if no
    task with positive weight fits, the video is too short: ``ValueError`` (see :meth:`min_length`).

    Raises:
        ValueError: on unknown task names, negative or all-zero weights, ``max_frames < 2``, a bad
            ``spacing``, ``min_latent`` or ``max_observed``; the message names the key.
    """

    def __init__(
        self,
        max_frames: int,
        tasks: Mapping[str, float] | None = None,
        max_observed: int | None = None,
        min_latent: int = 1,
        spacing: str | Mapping[str, float] = "log_uniform",
    ) -> None:
        check_int("max_frames", max_frames, 2)
        if not isinstance(min_latent, int) or not 1 <= min_latent <= max_frames:
            raise ValueError(
                f"min_latent: expected an integer in [1, max_frames={max_frames}], got {min_latent!r}"
            )
        if max_observed is None:
            max_observed = max_frames - min_latent
        if not isinstance(max_observed, int) or not 0 <= max_observed <= max_frames - min_latent:
            raise ValueError(
                f"max_observed: expected an integer in [0, max_frames - min_latent = "
                f"{max_frames - min_latent}],"
                f" got {max_observed!r}"
            )
        if isinstance(spacing, Mapping):
            spacing = _check_weights("spacing", spacing, FRAME_SPACINGS, "spacing")
        elif spacing not in FRAME_SPACINGS:
            raise ValueError(f"spacing: expected one of {list(FRAME_SPACINGS)} or a mapping of them to weights, got {spacing!r}")
        weights = _check_weights("tasks", DEFAULT_MASK_TASKS if tasks is None else tasks, MASK_TASKS, "task name")
        if max_observed == 0 and any(weights.get(t, 0) > 0 for t in MASK_TASKS[1:]):
            raise ValueError(
                "max_observed: 0 allows only the 'unconditional' task, but tasks gives positive weight to "
                f"{[t for t in MASK_TASKS[1:] if weights.get(t, 0) > 0]}"
            )
        if weights.get("interpolation", 0) > 0 and (max_observed < 2 or max_frames < 2 + min_latent):
            raise ValueError(
                "tasks['interpolation']: needs max_observed >= 2 and max_frames >= 2 + min_latent, got "
                f"max_frames={max_frames}, max_observed={max_observed}, min_latent={min_latent}"
            )
        self.max_frames = max_frames
        self.tasks = {name: float(weights.get(name, 0.0)) for name in MASK_TASKS}
        self.max_observed = max_observed
        self.min_latent = min_latent
        self.spacing = spacing

    def __repr__(self) -> str:
        return (
            f"FrameMaskSampler(max_frames={self.max_frames}, tasks={self.tasks}, "
            f"max_observed={self.max_observed},"
            f" min_latent={self.min_latent}, spacing={self.spacing!r})"
        )

    # ----------------------------------------------------------------------------------------------- tasks
    def _max_obs(self, n: int) -> int:
        """The most observed frames allowed among n chosen frames."""
        return min(self.max_observed, n - self.min_latent)

    def feasible_tasks(self, n: int) -> list[str]:
        """Tasks with positive weight that fit n chosen frames."""
        out = []
        for task, weight in self.tasks.items():
            if weight <= 0 or n < self.min_latent:
                continue
            m = self._max_obs(n)
            need = {"unconditional": 0, "interpolation": 2, "fdm": 0}.get(task, 1)
            if m >= need:
                out.append(task)
        return out

    def min_length(self) -> int:
        """The shortest video length for which some task with positive weight fits."""
        for n in range(1, self.max_frames + 1):
            if self.feasible_tasks(n):
                return n
        return self.max_frames  # unreachable: __init__ guarantees a task fits n = max_frames

    # --------------------------------------------------------------------------------------------- indices
    def _log_uniform_indices(self, length: int, n: int, generator: torch.Generator | None) -> list[int]:
        """Union of evenly spaced groups with log-uniform spacing until n unique positions are chosen."""
        chosen: set[int] = set()
        for _ in range(64):
            remaining = n - len(chosen)
            if remaining == 0:
                break
            size = _randint(1, remaining, generator)
            max_scale = (length - 1) / (size - 1) if size > 1 else float(length)
            scale = math.exp(_rand(generator) * math.log(max(max_scale, 1.0)))
            span = scale * (size - 1)
            start = _rand(generator) * max(length - span, 0.0)
            group = {min(int(start + i * scale), length - 1) for i in range(size)}
            chosen.update(sorted(group - chosen)[:remaining])
        if len(chosen) < n:  # rare: many collisions in a short video; top up uniformly
            rest = torch.tensor(sorted(set(range(length)) - chosen))
            pick = rest[torch.randperm(len(rest), generator=generator)[: n - len(chosen)]]
            chosen.update(int(i) for i in pick)
        return sorted(chosen)

    def _indices(self, length: int, n: int, generator: torch.Generator | None) -> torch.Tensor:
        spacing = self.spacing
        if isinstance(spacing, dict):  # a mixture: one spacing per sample
            spacing = _choose([k for k, v in spacing.items() if v > 0], spacing, generator)
        if spacing == "log_uniform":
            idx = self._log_uniform_indices(length, n, generator)
            return torch.tensor(idx, dtype=torch.long)
        if spacing == "uniform":
            return torch.randperm(length, generator=generator)[:n].sort().values.long()
        start = _randint(0, length - n, generator)
        return torch.arange(start, start + n, dtype=torch.long)

    # ------------------------------------------------------------------------------------------------- fdm
    @staticmethod
    def _fdm_group(length: int, max_size: int, generator: torch.Generator | None) -> list[int]:
        """FDM's ``sample_some_indices``: 1..max_size evenly spaced positions, log-uniform spacing in [1, T/(s-1)]."""
        for _ in range(100):
            size = _randint(1, max_size, generator)
            max_scale = length / (size - 0.999)
            scale = math.exp(_rand(generator) * math.log(max_scale))
            start = _rand(generator) * (length - scale * (size - 1))
            group = [int(start + i * scale) for i in range(size)]
            if all(0 <= i < length for i in group):
                return group
        return [_randint(0, length - 1, generator)]  # unreachable in practice (FDM recurses instead)

    def fdm_mask(self, length: int, generator: torch.Generator | None = None) -> FrameMask:
        """FDM's ``sample_all_masks`` for one video (Harvey et al. 2022, plai-group's code).

        A first group of positions is latent; then, with a fair coin per group, further groups become observed
        or latent (positions already taken are dropped from the group) until a group no longer fits in the
        ``max_frames`` budget: that group is discarded and the draw stops, so the sample usually has fewer than
        ``max_frames`` frames. FDM fills the free slots with frames that are neither observed nor scored; vidiff
        leaves them as padding (``valid`` False: not scored, not observed), which is the same to the loss.
        """
        k = min(self.max_frames, length)
        latent = set(self._fdm_group(length, k, generator))
        observed: set[int] = set()
        while True:
            target = observed if _rand(generator) < 0.5 else latent
            group = [i for i in self._fdm_group(length, k, generator) if i not in observed and i not in latent]
            free = k - len(observed) - len(latent)
            if len(group) > free or len(group) == free == 0:
                break
            target.update(group)
        frame_idx = torch.tensor(sorted(latent | observed), dtype=torch.long)
        is_observed = torch.tensor([int(i) in observed for i in frame_idx], dtype=torch.bool)
        return FrameMask(frame_idx=frame_idx, observed=is_observed, task="fdm")

    # ---------------------------------------------------------------------------------------------- split
    def _split(self, n: int, task: str, generator: torch.Generator | None) -> torch.Tensor:
        observed = torch.zeros(n, dtype=torch.bool)
        max_obs = self._max_obs(n)
        if task == "unconditional":
            return observed
        if task == "prediction":
            observed[: _randint(1, max_obs, generator)] = True
        elif task == "past_prediction":
            observed[n - _randint(1, max_obs, generator) :] = True
        elif task == "interpolation":
            m = _randint(2, max_obs, generator)
            left = _randint(1, m - 1, generator)
            observed[:left] = True
            observed[n - (m - left) :] = True
        else:  # arbitrary
            m = _randint(1, max_obs, generator)
            observed[torch.randperm(n, generator=generator)[:m]] = True
        return observed

    def __call__(self, video_length: int, generator: torch.Generator | None = None) -> FrameMask:
        """Draw the frames and the observed/latent split for one sample.

        Args:
            video_length: T, the number of frames available (positions ``0 .. T-1``).
            generator: torch generator for reproducible draws (None: torch's global RNG).

        Returns:
            FrameMask with ``n = min(max_frames, T)`` sorted unique positions.

        Raises:
            ValueError: if ``video_length`` is below :meth:`min_length`.
        """
        check_int("video_length", video_length)
        n = min(self.max_frames, video_length)
        feasible = self.feasible_tasks(n)
        if not feasible:
            raise ValueError(
                f"video_length: {video_length} frames fit none of the tasks "
                f"{[t for t, w in self.tasks.items() if w]}"
                f" (min_latent={self.min_latent}); expected at least {self.min_length()} frames"
            )
        task = _choose(feasible, self.tasks, generator)
        if task == "fdm":
            return self.fdm_mask(video_length, generator)
        frame_idx = self._indices(video_length, n, generator)
        return FrameMask(frame_idx=frame_idx, observed=self._split(n, task, generator), task=task)
