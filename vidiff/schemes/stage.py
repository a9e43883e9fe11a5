"""A plan's unit (:class:`Stage`), its validity check and its grouping into batchable waves.

A plan is an ordered list of stages. Stage ``i`` shows the model ``observed`` frames (given by the user or
produced by stages ``< i``) and has it generate the ``latent`` frames. Plans are pure data: they can be
checked (:func:`check_plan`), drawn (:mod:`vidiff.schemes.draw`) and batched (:func:`batches`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Stage:
    """One network pass of a long-video plan: generate ``latent`` frames given ``observed`` frames.

    Attributes:
        observed: sorted frame indices the model sees clean (given, or produced by earlier stages).
        latent: sorted frame indices this stage generates.
        adaptive: when True, ``observed`` is only a default: the executor should replace it at run time
            with :func:`vidiff.schemes.choose_observed` (or :func:`vidiff.schemes.resolve_stage`) from the
            frames available then, passing ``anchors``.
        anchors: frames an adaptive choice must keep (FDM: the temporally closest ones); empty otherwise.
    """

    observed: list[int]
    latent: list[int]
    adaptive: bool = False
    anchors: list[int] = field(default_factory=list)

    @property
    def frames(self) -> list[int]:
        """All frame indices of the stage, observed first then latent (FDM's layout): length <= max_frames."""
        return [*self.observed, *self.latent]

    @property
    def observed_mask(self) -> list[bool]:
        """Aligned with :attr:`frames`: True for observed frames, False for latent ones."""
        return [True] * len(self.observed) + [False] * len(self.latent)

    def __len__(self) -> int:
        return len(self.observed) + len(self.latent)

    def with_observed(self, observed: Iterable[int]) -> Stage:
        """A fixed (non-adaptive) copy of this stage observing ``observed`` instead."""
        return replace(self, observed=sorted(observed), adaptive=False, anchors=[])


def make_stage(observed: Iterable[int], latent: Iterable[int], **kwargs) -> Stage:
    """A :class:`Stage` with sorted, plain-int index lists."""
    return Stage(observed=sorted(int(i) for i in observed), latent=sorted(int(i) for i in latent), **kwargs)


def check_plan(stages: Sequence[Stage], length: int, max_frames: int, given: Iterable[int] = ()) -> None:
    """Raise ValueError naming the first stage that breaks a plan's invariants; return None if valid.

    Invariants: indices in ``[0, length)``; no duplicate index within a stage; observed and latent disjoint;
    at most ``max_frames`` frames per stage; at least one latent frame; a stage observes only frames given or
    produced before it, and at least one whenever any exists; no frame produced twice or given and produced;
    at the end every frame is given or produced.
    """
    done = set(given)
    for i, stage in enumerate(stages):
        obs, lat = list(stage.observed), list(stage.latent)
        where = f"stage {i} (observed={obs}, latent={lat})"
        if not lat:
            raise ValueError(f"{where}: generates no frame")
        if len(set(obs)) != len(obs) or len(set(lat)) != len(lat):
            raise ValueError(f"{where}: repeats a frame index")
        if set(obs) & set(lat):
            raise ValueError(f"{where}: observes and generates the same frame")
        if len(obs) + len(lat) > max_frames:
            raise ValueError(
                f"{where}: holds {len(obs) + len(lat)} frames, more than max_frames={max_frames}"
            )
        if any(not 0 <= f < length for f in obs + lat):
            raise ValueError(f"{where}: index outside [0, {length})")
        if not set(obs) <= done:
            raise ValueError(f"{where}: observes frames {sorted(set(obs) - done)} not yet available")
        if done and not obs:
            raise ValueError(f"{where}: observes nothing although {len(done)} frames are available")
        if set(lat) & done:
            raise ValueError(f"{where}: regenerates frames {sorted(set(lat) & done)}")
        done |= set(lat)
    missing = sorted(set(range(length)) - done)
    if missing:
        raise ValueError(f"plan never produces frames {missing[:10]}{' ...' if len(missing) > 10 else ''}")


def batches(stages: Sequence[Stage], max_size: int | None = None) -> list[list[int]]:
    """Group stage indices into waves that can each run as one batched forward pass.

    Stage ``j`` depends on every earlier stage that produces one of its observed frames; an adaptive stage
    depends on all earlier stages (its observed frames are chosen at run time among everything produced so
    far). A wave holds stages whose dependencies all lie in earlier waves, so running the waves in order gives
    exactly the result of running the stages one by one. Within a wave stages keep plan order.

    Args:
        stages: the plan.
        max_size: if given, split each wave into consecutive chunks of at most this many stages.

    Returns:
        list of waves, each a list of indices into ``stages``.
    """
    if max_size is not None and max_size < 1:
        raise ValueError(f"max_size must be >= 1 (or None), got {max_size}")
    producer: dict[int, int] = {}
    level: list[int] = []
    for j, stage in enumerate(stages):
        if stage.adaptive:
            deps = range(j)
        else:
            deps = {producer[f] for f in stage.observed if f in producer}
        level.append(1 + max((level[d] for d in deps), default=-1))
        for f in stage.latent:
            producer[f] = j
    waves: list[list[int]] = [[] for _ in range(max(level, default=-1) + 1)]
    for j, lv in enumerate(level):
        waves[lv].append(j)
    if max_size is None:
        return waves
    return [wave[k : k + max_size] for wave in waves for k in range(0, len(wave), max_size)]
