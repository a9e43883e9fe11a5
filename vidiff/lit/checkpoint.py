"""Checkpoint files: atomic writes and where they go.

* :class:`AtomicCheckpointIO` writes every checkpoint to a temporary file in the target folder, flushes it to
  disk and then ``os.replace``-s it over the target, so a crash (or a NaN stop) mid-save never leaves a
  half-written ``last.ckpt``: readers see the old file or the new one.
* :class:`RunCheckpoint` is Lightning's ``ModelCheckpoint`` with vidiff's defaults (``last.ckpt`` plus the best
  by ``val/loss``) writing to ``<default_root_dir>/checkpoints`` rather than into a per-run logger version, so
  ``--ckpt_path last`` finds the previous run's checkpoint when a run is resumed into the same folder.
  ``last.ckpt`` is rewritten at every validation and at the end of fit, whether or not the monitored metric
  improved (Lightning >= 2.5 only rewrites it together with a top-k checkpoint). It is never renamed
  ``last-v1.ckpt``: the version counter is off, and :mod:`vidiff.lit.run_folder` refuses a fresh fit into a folder
  that holds an earlier run's checkpoints.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins import TorchCheckpointIO
from pytorch_lightning import Trainer
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.trainer.states import TrainerFn

from vidiff.io.atomic import atomic_path
from vidiff.io.errors import reading, writing

log = logging.getLogger(__name__)


def kept_checkpoint(path: Path) -> str:
    """What a failed save of ``path`` leaves intact and what to do next (the tail of its one-line error)."""
    last = path.parent / "last.ckpt"
    previous = path if path.is_file() else last if last.is_file() else None
    if previous is not None:
        return f"the previous checkpoint {previous} is intact; free space and continue with --ckpt_path last"
    return "no checkpoint was written before; free space and run again"


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` through a temporary file in the same folder and ``os.replace``.

    Raises:
        vidiff.io.errors.WriteFault: the disk is full (or read-only); ``path`` is left as it was.
    """
    path = Path(path)
    with writing(path, kept_checkpoint(path)), atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    return path


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO whose saves are atomic (local paths; other file systems use Lightning's own)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"storage_options: {type(self).__name__} takes none, got {storage_options!r}")
        if "://" in str(path):
            super().save_checkpoint(checkpoint, path)
            return
        atomic_torch_save(checkpoint, path)
        log.debug("saved checkpoint %s", path)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        """Lightning's load, tensors and plain data only (``weights_only`` True unless given); an unsafe or corrupt
        file raises a one-line :class:`~vidiff.io.errors.FileFault` (``vidiff fit --ckpt_path``)."""
        if "://" in str(path):
            return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)
        with reading(path):
            return super().load_checkpoint(
                path,
                map_location=map_location or (lambda storage, loc: storage),
                weights_only=True if weights_only is None else weights_only,
            )


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` writing ``last.ckpt`` and the best (lowest ``val/loss``) checkpoint.

    Args:
        dirpath: folder of the checkpoints; default ``<trainer.default_root_dir>/checkpoints``.
        filename: name of the best checkpoint(s), Lightning's format syntax.
        monitor: logged metric that ranks checkpoints.
        mode: ``"min"`` or ``"max"`` of ``monitor``.
        save_last: also keep ``last.ckpt`` (the resume point).
        save_top_k: how many best checkpoints to keep.
        every_n_train_steps: also save every this many steps (default: at every validation).
        auto_insert_metric_name: Lightning's ``name=value`` file names (off: ``best-000250.ckpt``).
        enable_version_counter: Lightning's ``-v1`` suffix for names that exist already; off, so the last
            checkpoint is always ``last.ckpt`` (:class:`~vidiff.lit.run_folder.RunFolderGuard` keeps a fresh run
            from writing beside an earlier run's files).
        **kwargs: any other ``ModelCheckpoint`` argument.
    """

    def __init__(
        self,
        dirpath: str | None = None,
        filename: str = "best-{step:06d}",
        monitor: str | None = "val/loss",
        mode: str = "min",
        save_last: bool = True,
        save_top_k: int = 1,
        every_n_train_steps: int | None = None,
        auto_insert_metric_name: bool = False,
        enable_version_counter: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            dirpath=dirpath,
            filename=filename,
            monitor=monitor,
            mode=mode,
            save_last=save_last,
            save_top_k=save_top_k,
            every_n_train_steps=every_n_train_steps,
            auto_insert_metric_name=auto_insert_metric_name,
            enable_version_counter=enable_version_counter,
            **kwargs,
        )
        self._last_written_step: int | None = None

    def _save_last_checkpoint(self, trainer: Trainer, monitor_candidates: dict[str, Any]) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        if self.save_last:
            self._last_written_step = trainer.global_step

    def _ensure_last(self, trainer: Trainer) -> None:
        """Write ``last.ckpt`` for the current step unless it already holds it."""
        if (
            not self.save_last
            or trainer.fast_dev_run
            or trainer.sanity_checking
            or trainer.state.fn != TrainerFn.FITTING
            or trainer.global_step == 0
            or self._last_written_step == trainer.global_step
        ):
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_validation_end(self, trainer: Trainer, pl_module: Any) -> None:
        super().on_validation_end(trainer, pl_module)
        self._ensure_last(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: Any) -> None:
        super().on_train_end(trainer, pl_module)
        self._ensure_last(trainer)

    def _default_dir(self, trainer: Trainer) -> None:
        if self.dirpath is None:
            self.dirpath = os.path.realpath(os.path.join(trainer.default_root_dir, "checkpoints"))

    def setup(self, trainer: Trainer, pl_module: Any, stage: str) -> None:
        self._default_dir(trainer)
        super().setup(trainer, pl_module, stage)

    def _find_last_checkpoints(self, trainer: Trainer) -> set[str]:
        # Called to resolve ``ckpt_path="last"`` before ``setup``; the folder must already be known.
        self._default_dir(trainer)
        return super()._find_last_checkpoints(trainer)
