"""LightningDataModules for the Shapes world and for a folder of videos.

Init arguments are plain types so LightningCLI configures them from YAML (``data.init_args``).

Reproducibility: the sample at ``(epoch, position)`` is a pure function of ``(seed, epoch, position)``. The
train loader's sampler is an :class:`~vidiff.data.sampling.EpochSampler` (Lightning calls its ``set_epoch``
every epoch and leaves it in place under DDP, where it shards by rank itself); the data sets seed a fresh
generator per item from ``(seed, epoch, index)``; the DataLoader gets its own generator, so creating a loader
never draws from torch's global RNG. Validation uses epoch 0 for every item and no shuffle, so validation
batches (frames and masks) are identical across epochs and runs. To resume mid-epoch exactly, call
:meth:`resume` with the epoch and the number of training batches this rank already consumed in it, before
the train loader is iterated; Lightning does this through ``state_dict`` / ``load_state_dict``.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from vidiff.arguments import check_int
from vidiff.masks import FrameMaskSampler

from .sampling import EpochSampler
from .shapes import ShapesWorld
from .video_folder import DEFAULT_EXTENSIONS, SHORT_VIDEOS, VideoFolder, split_paths
from .video_index import build_index, index_path

log = logging.getLogger(__name__)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed NumPy and ``random`` from the worker's torch seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _positive(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None:
            check_int(name, value)


class _VideoDataModule(pl.LightningDataModule):
    """Loader plumbing shared by the data modules: seeded epoch sampler, workers, resume position."""

    def __init__(self, batch_size: int, val_batch_size: int | None, num_workers: int, seed: int) -> None:
        super().__init__()
        _positive(batch_size=batch_size, val_batch_size=val_batch_size)
        check_int("num_workers", num_workers, 0)
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.val_batch_size = val_batch_size or batch_size
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self.train_sampler: EpochSampler | None = None
        self._resume: tuple[int, int] | None = None

    def _replicas(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 1, 0
        return int(trainer.world_size), int(trainer.global_rank)

    def _loader(self, dataset: Dataset, sampler: EpochSampler, batch_size: int) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            worker_init_fn=seed_worker if self.num_workers > 0 else None,
            # safe: the epoch travels in the (epoch, index) keys from the main process, not in worker state
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def resume(self, epoch: int, batches_done: int) -> None:
        """Make the next pass over epoch ``epoch`` skip the ``batches_done`` batches this rank consumed."""
        self._resume = (int(epoch), int(batches_done) * self.batch_size)
        if self.train_sampler is not None:
            self.train_sampler.set_start(*self._resume)

    def state_dict(self) -> dict[str, int]:
        """Saved in Lightning checkpoints: the epoch and the train batches this rank consumed in it."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return {}
        loop = trainer.fit_loop
        return {
            "epoch": int(trainer.current_epoch),
            "batches_done": int(loop.epoch_loop.batch_progress.current.processed),
        }

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """Restored by Lightning before the loaders are built: continue the epoch where the checkpoint left it."""
        if "epoch" in state_dict:
            self.resume(state_dict["epoch"], state_dict["batches_done"])

    def train_dataloader(self) -> DataLoader:
        if self.train_dataset is None:
            self.setup("fit")
        replicas, rank = self._replicas()
        self.train_sampler = EpochSampler(len(self.train_dataset), self.seed, True, replicas, rank)
        if self._resume is not None:
            self.train_sampler.set_epoch(self._resume[0])
            self.train_sampler.set_start(*self._resume)
        return self._loader(self.train_dataset, self.train_sampler, self.batch_size)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_dataset is None:
            self.setup("validate")
        if self.val_dataset is None:
            return []
        replicas, rank = self._replicas()
        sampler = EpochSampler(len(self.val_dataset), self.seed, False, replicas, rank)
        return self._loader(self.val_dataset, sampler, self.val_batch_size)

    def test_dataloader(self) -> DataLoader | list:
        """The validation split (the data sets have no separate test split)."""
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader | list:
        """The validation split: `vidiff predict` generates for its (deterministic) frame masks."""
        return self.val_dataloader()


class ShapesDataModule(_VideoDataModule):
    """The built-in Shapes world: train videos ``0 .. train_videos-1``, validation the next ``val_videos``.

    Args:
        image_size: frame side in pixels.
        length: frames per video from which training frames are drawn (T).
        max_frames: K, frames per sample.
        tasks: mask task weights (see ``vidiff.masks.MASK_TASKS``); None: the defaults.
        max_observed: most observed frames per sample (None: ``max_frames - 1``).
        spacing: how frames are chosen: "log_uniform", "uniform", "contiguous", or a mapping of them to weights
            (one drawn per sample, e.g. ``{contiguous: 0.5, log_uniform: 0.5}``).
        min_objects, max_objects: object count range.
        speed: (min, max) pixels per frame.
        size: (min, max) object half-extent in pixels (None: scaled with ``image_size``).
        antialias: supersampling factor (1 = exact palette colours).
        train_videos, val_videos: split sizes (disjoint videos of the same world).
        batch_size, val_batch_size: loader batch sizes (val defaults to ``batch_size``).
        num_workers: DataLoader worker processes.
        seed: world and sampling seed.
    """

    def __init__(
        self,
        image_size: int = 32,
        length: int = 64,
        max_frames: int = 8,
        tasks: dict[str, float] | None = None,
        max_observed: int | None = None,
        spacing: str | dict[str, float] = "log_uniform",
        min_objects: int = 1,
        max_objects: int = 3,
        speed: tuple[float, float] = (0.5, 2.0),
        size: tuple[float, float] | None = None,
        antialias: int = 1,
        train_videos: int = 10000,
        val_videos: int = 64,
        batch_size: int = 8,
        val_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, val_batch_size, num_workers, seed)
        _positive(image_size=image_size, length=length, max_frames=max_frames, train_videos=train_videos)
        check_int("val_videos", val_videos, 0)
        if max_frames > length:
            raise ValueError(
                f"max_frames: expected at most length={length} frames per sample, got {max_frames}"
            )
        self.save_hyperparameters()
        self.sampler = FrameMaskSampler(max_frames, tasks, max_observed, spacing=spacing)
        world = {
            "length": length,
            "image_size": image_size,
            "min_objects": min_objects,
            "max_objects": max_objects,
            "speed": speed,
            "size": size,
            "seed": seed,
            "antialias": antialias,
            "sampler": self.sampler,
        }
        # build both worlds now: bad values fail at configuration time, and they cost nothing until rendered
        self.train_dataset = ShapesWorld(num_videos=train_videos, **world)
        self.val_dataset = (
            ShapesWorld(num_videos=val_videos, index_offset=train_videos, **world) if val_videos else None
        )

    def setup(self, stage: str | None = None) -> None:
        """Nothing to do: the worlds are procedural and built in ``__init__``."""


class VideoFolderDataModule(_VideoDataModule):
    """A folder of videos with a deterministic validation split (or a separate validation folder).

    Args:
        root: folder of videos (recursive).
        image_size: output frame side (shorter side resized, centre crop).
        frame_stride: keep every n-th frame.
        clip_length: None: frames from the whole video (long-horizon); else clip length in strided frames.
        max_frames: K, frames per sample.
        tasks, max_observed, spacing: mask sampler settings (see ``ShapesDataModule``).
        val_fraction: share of ``root``'s videos held out for validation (by a seeded hash of the path).
        val_root: a separate validation folder; when given, all of ``root`` trains (``val_fraction``
            is unused).
        short_videos: "mask" (missing frames get ``valid=False``) or "skip".
        extensions: file extensions to include (None: mp4, avi, mov, webm, gif, mkv).
        cache_dir: where the frame-count index is kept (None: next to the videos).
        rebuild_index: recount every file's frames in ``prepare_data`` (at every start while true), ignoring the
            cached index: after files changed without a new size or mtime, or to retry files cached as undecodable.
        batch_size, val_batch_size, num_workers, seed: loader settings.
    """

    def __init__(
        self,
        root: str,
        image_size: int = 64,
        frame_stride: int = 1,
        clip_length: int | None = None,
        max_frames: int = 8,
        tasks: dict[str, float] | None = None,
        max_observed: int | None = None,
        spacing: str | dict[str, float] = "log_uniform",
        val_fraction: float = 0.05,
        val_root: str | None = None,
        short_videos: str = "mask",
        extensions: list[str] | None = None,
        cache_dir: str | None = None,
        rebuild_index: bool = False,
        batch_size: int = 8,
        val_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, val_batch_size, num_workers, seed)
        _positive(
            image_size=image_size, frame_stride=frame_stride, clip_length=clip_length, max_frames=max_frames
        )
        if clip_length is not None and max_frames > clip_length:
            raise ValueError(
                f"max_frames: expected at most clip_length={clip_length} frames, got {max_frames}"
            )
        if not isinstance(val_fraction, (int, float)) or not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction: expected a number in [0, 1), got {val_fraction!r}")
        if short_videos not in SHORT_VIDEOS:
            raise ValueError(f"short_videos: expected one of {list(SHORT_VIDEOS)}, got {short_videos!r}")
        for name, folder in (("root", root), ("val_root", val_root)):
            if folder is not None and not Path(folder).expanduser().is_dir():
                raise FileNotFoundError(
                    f"{name}: video folder {str(folder)!r} does not exist or is not a folder"
                )
        self.save_hyperparameters()
        self.sampler = FrameMaskSampler(max_frames, tasks, max_observed, spacing=spacing)
        self.root, self.val_root, self.val_fraction = root, val_root, float(val_fraction)
        self.rebuild_index = bool(rebuild_index)
        self.folder_args = {
            "image_size": image_size,
            "frame_stride": frame_stride,
            "clip_length": clip_length,
            "sampler": self.sampler,
            "extensions": tuple(extensions or DEFAULT_EXTENSIONS),
            "short_videos": short_videos,
            "cache_dir": cache_dir,
            "seed": seed,
        }

    def prepare_data(self) -> None:
        """Index new or changed files once (rank 0 of each node), so ``setup`` only reads the cache."""
        exts = self.folder_args["extensions"]
        for folder in (self.root, self.val_root):
            if folder is not None:
                path = Path(folder).expanduser()
                cache = index_path(path, self.folder_args["cache_dir"])
                build_index(path, exts, cache, rebuild=self.rebuild_index)

    def setup(self, stage: str | None = None) -> None:
        """Index the folder(s) and split train / validation deterministically."""
        if self.train_dataset is not None:
            return
        full = VideoFolder(self.root, **self.folder_args)
        if self.val_root is not None:
            self.train_dataset, self.val_dataset = full, VideoFolder(self.val_root, **self.folder_args)
        elif self.val_fraction > 0 and len(full) > 1:
            train, val = split_paths(full.paths, self.val_fraction, self.seed)
            self.train_dataset, self.val_dataset = full.subset(train), full.subset(val)
        else:
            if self.val_fraction > 0:
                log.warning("only one usable video under %s: no validation split", self.root)
            self.train_dataset, self.val_dataset = full, None
        log.info(
            "video folder %s: %d train videos, %d validation videos",
            self.root,
            len(self.train_dataset),
            len(self.val_dataset) if self.val_dataset is not None else 0,
        )
