"""Reproducible randomness for data sets: per-sample generators and an epoch-aware index sampler.

The sample at ``(epoch, index)`` is a pure function of ``(seed, epoch, index)``: data sets seed a fresh
``torch.Generator`` per item from those three numbers, so worker count, worker seeds and prefetching never
change what a sample holds. :class:`EpochSampler` yields ``(epoch, index)`` keys in an order that is a pure
function of ``(seed, epoch)``, so the order of an epoch is reproducible too, and a resumed run can skip the
positions it already consumed (:meth:`EpochSampler.set_start`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DistributedSampler

#: Stream tags that keep the draws of different purposes independent.
STREAM_MASK = 0
STREAM_CLIP = 1
STREAM_ORDER = 2


def sample_generator(seed: int, epoch: int, index: int, stream: int = STREAM_MASK) -> torch.Generator:
    """A torch generator seeded from ``(seed, epoch, index, stream)`` through NumPy's SeedSequence."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(index), int(stream)])
    return torch.Generator().manual_seed(int(state.generate_state(1, dtype=np.uint64)[0]))


def split_key(key: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``index`` or ``(epoch, index)`` -> ``(epoch, index)``; a bare index means epoch 0."""
    if isinstance(key, (tuple, list)):
        if len(key) != 2:
            raise ValueError(f"key: expected an index or an (epoch, index) pair, got {key!r}")
        return int(key[0]), int(key[1])
    if isinstance(key, torch.Tensor):
        key = int(key)
    if not isinstance(key, (int, np.integer)):
        raise TypeError(f"key: expected an int index or an (epoch, index) pair, got {type(key).__name__}")
    return 0, int(key)


def pad_frame_idx(frame_idx: torch.Tensor, k: int) -> torch.Tensor:
    """(n,) sorted indices -> (k,): padding slots continue after the last index (stays sorted and unique)."""
    n = frame_idx.numel()
    last = int(frame_idx[-1]) if n else -1
    return torch.cat([frame_idx.long(), torch.arange(last + 1, last + 1 + k - n, dtype=torch.long)])


def pad_bool(x: torch.Tensor, k: int) -> torch.Tensor:
    """(n,) bool -> (k,) bool, False in the padding slots."""
    return torch.cat([x.bool(), torch.zeros(k - x.numel(), dtype=torch.bool)])


class EpochSampler(DistributedSampler):
    """Yields ``(epoch, index)`` keys; the order is a pure function of ``(seed, epoch)``.

    It subclasses ``DistributedSampler`` so Lightning neither replaces it under DDP nor forgets to call
    :meth:`set_epoch` (it calls ``set_epoch(current_epoch)`` on samplers that have it before every epoch).
    Each of ``num_replicas`` ranks gets a disjoint strided share of the permutation.

    Args:
        num_samples: length of the data set.
        seed: base seed of the shuffle.
        shuffle: permute the indices each epoch (False: 0, 1, 2, ...).
        num_replicas: number of ranks (1 without distributed training).
        rank: this rank.
        drop_last: drop the tail so every rank gets the same count (otherwise the tail is padded by wrapping).
    """

    def __init__(
        self,
        num_samples: int,
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples: expected >= 1, got {num_samples}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank: expected 0 <= rank < num_replicas={num_replicas}, got {rank}")
        self.dataset_len = num_samples
        self.num_replicas, self.rank = num_replicas, rank
        self.seed, self.shuffle, self.drop_last = seed, shuffle, drop_last
        self.epoch = 0
        self._start: tuple[int, int] | None = None
        if drop_last and num_samples % num_replicas:
            self.num_samples = num_samples // num_replicas
        else:
            self.num_samples = math.ceil(num_samples / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration yields."""
        self.epoch = int(epoch)

    def set_start(self, epoch: int, position: int) -> None:
        """Make the next iteration over ``epoch`` begin at this rank's ``position`` (resume mid-epoch).

        One-shot: the iteration after it starts at 0 again. Use ``position = batches_done * batch_size``
        (a position past the end makes that epoch's iteration empty).
        """
        if position < 0:
            raise ValueError(f"position: expected an integer >= 0, got {position}")
        self._start = (int(epoch), int(position))

    def order(self, epoch: int) -> list[int]:
        """This rank's indices for ``epoch``, in the order they are yielded."""
        if self.shuffle:
            g = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + int(epoch))
            perm = torch.randperm(self.dataset_len, generator=g).tolist()
        else:
            perm = list(range(self.dataset_len))
        if self.total_size > len(perm):
            perm += (perm * math.ceil(self.total_size / len(perm)))[: self.total_size - len(perm)]
        return perm[: self.total_size][self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, start = self.epoch, 0
        if self._start is not None:
            if self._start[0] == epoch:
                start = self._start[1]
            self._start = None
        for index in self.order(epoch)[start:]:
            yield epoch, index

    def __len__(self) -> int:
        return self.num_samples
