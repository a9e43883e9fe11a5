"""One run per run folder: a fresh `vidiff fit` never writes next to an earlier run's checkpoints.

README, the docs and ``vidiff demo`` point at ``<default_root_dir>/checkpoints/last.ckpt``. Lightning, given a folder
that already holds ``last.ckpt``, would write ``last-v1.ckpt`` beside it and leave the old file as the one every
path names. :class:`RunFolderGuard` decides before anything is written (at ``on_fit_start``, once a checkpoint
given by ``ckpt_path`` was read):

* the checkpoint folder holds no ``*.ckpt``: go on;
* ``ckpt_path`` is that folder's ``last.ckpt`` (``--ckpt_path last``): the run continues and rewrites it;
* ``overwrite``: the old checkpoints are moved to ``checkpoints.replaced-YYYYmmdd-HHMMSS`` (never deleted) and the
  run starts a new history there (its weights are those of ``ckpt_path`` when given);
* otherwise (a fresh fit, or a fit from another checkpoint that would replace a later ``last.ckpt``): stop with
  one line naming ``--ckpt_path last`` and ``--overwrite true``.

:class:`~vidiff.lit.checkpoint.RunCheckpoint` also turns Lightning's version counter off, so ``last.ckpt`` is the only
name the last checkpoint ever has. While the fit runs, rank 0 holds the run folder's lock
(:func:`vidiff.io.lock.lock_folder`, ``<default_root_dir>/vidiff.lock``): a second `vidiff fit` into the folder
stops at once, naming the first one. Once the lock is held, the temporary files a killed save left in the run and
checkpoint folders are removed (:func:`vidiff.io.atomic.sweep_temporaries`).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

from vidiff.io.atomic import sweep_temporaries
from vidiff.io.lock import FolderInUseError, FolderLock, lock_folder

log = logging.getLogger(__name__)


def checkpoint_folders(trainer: pl.Trainer) -> list[Path]:
    """The folders the trainer's ``ModelCheckpoint`` callbacks write to (default ``<root>/checkpoints``)."""
    folders = []
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint):
            dirpath = callback.dirpath or os.path.join(trainer.default_root_dir, "checkpoints")
            if "://" not in str(dirpath):
                folders.append(Path(os.path.realpath(dirpath)))
    return list(dict.fromkeys(folders))


def _same_file(a: str | os.PathLike | None, b: Path) -> bool:
    return a is not None and "://" not in str(a) and os.path.realpath(a) == os.path.realpath(b)


def refusal(folder: Path, ckpt_path: str | os.PathLike | None, moved_to: Path) -> str | None:
    """Why a fit with ``ckpt_path`` must not write into checkpoint ``folder`` (one line), or None when it may."""
    existing = sorted(p.name for p in folder.glob("*.ckpt")) if folder.is_dir() else []
    if not existing:
        return None
    last = folder / "last.ckpt"
    if ckpt_path is not None and (not last.exists() or _same_file(ckpt_path, last)):
        return None  # continuing the run (or, without a last.ckpt, from one of its checkpoints)
    shown = ", ".join(existing[:3]) + (", ..." if len(existing) > 3 else "")
    what = (
        "a fresh fit would mix its checkpoints with theirs"
        if ckpt_path is None
        else f"fitting from --ckpt_path {ckpt_path} would replace its last.ckpt"
    )
    return (
        f"vidiff fit: {folder} already holds an earlier run's checkpoints ({shown}) and {what}; "
        f"continue that run with --ckpt_path last, or start afresh with --overwrite true "
        f"(moves them to {moved_to.name}/), or choose another --trainer.default_root_dir"
    )


class RunFolderGuard(Callback):
    """Locks the run folder during a fit, and refuses a fit that would write beside an earlier run's checkpoints
    (``overwrite`` moves them aside first).

    Args:
        overwrite: move existing checkpoints to ``checkpoints.replaced-<time>`` and start a new run history.
    """

    def __init__(self, overwrite: bool = False) -> None:
        self.overwrite = overwrite
        self.moved: list[Path] = []
        self._checked = False
        self.lock: FolderLock | None = None
        self._new_log_dir: Path | None = None  # the logger folder this run created (removed if it fails at once)
        self._new_parents: list[Path] = []  # folders above it that did not exist either (removed when left empty)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or trainer.fast_dev_run:
            return
        problem = None
        if trainer.is_global_zero:
            try:
                self.lock = lock_folder(trainer.default_root_dir, what="vidiff fit")
            except FolderInUseError as err:
                problem = str(err)
            else:  # a killed save's temporary files; safe to remove while we hold the lock
                sweep_temporaries(trainer.default_root_dir, *checkpoint_folders(trainer))
        problem = trainer.strategy.broadcast(problem, src=0)
        if problem is not None:
            raise SystemExit(problem)

    def note_log_dir(self, trainer: pl.Trainer) -> None:
        """Remember the logger folder if it does not exist yet (call before fit: Lightning creates it in setup)."""
        if trainer.is_global_zero and trainer.log_dir and not Path(trainer.log_dir).exists():
            self._new_log_dir = Path(trainer.log_dir)
            self._new_parents = [p for p in self._new_log_dir.parents if not p.exists()]

    def _release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._release()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._release()
        if trainer.global_step == 0 and self._new_log_dir is not None and remove_unused_log_dir(self._new_log_dir):
            for folder in self._new_parents:  # lightning_logs/ (and the run folder) if this run created them
                try:
                    folder.rmdir()
                except OSError:  # not empty: something else lives there
                    break

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.strategy.restore_checkpoint_after_setup:  # else ckpt_path is known only at train start
            self._check(trainer)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer)

    def _check(self, trainer: pl.Trainer) -> None:
        if self._checked or trainer.fast_dev_run:  # fast_dev_run writes no checkpoints
            return
        self._checked = True
        stamp = time.strftime("%Y%m%d-%H%M%S")
        problem = None
        if trainer.is_global_zero:
            for folder in checkpoint_folders(trainer):
                moved_to = folder.with_name(f"{folder.name}.replaced-{stamp}")
                reason = refusal(folder, trainer.ckpt_path, moved_to)
                if reason is None:
                    continue
                if not self.overwrite:
                    problem = reason
                    break
                os.replace(folder, moved_to)
                self.moved.append(moved_to)
                log.warning("--overwrite true: moved the earlier checkpoints %s to %s", folder, moved_to)
        problem = trainer.strategy.broadcast(problem, src=0)
        if problem is not None:
            raise SystemExit(problem)
        if trainer.strategy.broadcast(bool(self.moved), src=0):
            _forget_history(trainer)


#: What a failed start leaves in a fresh logger folder: the saved config and TensorBoard's near-empty files.
_START_FILES = ("config.yaml", "hparams.yaml")


def remove_unused_log_dir(folder: Path) -> bool:
    """Remove ``lightning_logs/version_N`` of a run that failed before its first step (nothing but the saved config
    and event files of at most 4 KiB in it); returns whether it was removed. Anything else keeps the folder."""
    if not folder.is_dir():
        return False
    for item in folder.iterdir():
        small_events = item.name.startswith("events.out.tfevents") and item.stat().st_size <= 4096
        if not item.is_file() or not (item.name in _START_FILES or small_events):
            return False
    shutil.rmtree(folder, ignore_errors=True)
    return True


def _forget_history(trainer: pl.Trainer) -> None:
    """Reset restored ``ModelCheckpoint`` state that points at the moved files (a new history starts)."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint):
            fresh: Any = ModelCheckpoint(monitor=callback.monitor, mode=callback.mode)
            for key in ("best_k_models", "kth_best_model_path", "kth_value", "best_model_score",
                        "best_model_path", "last_model_path", "current_score"):
                setattr(callback, key, getattr(fresh, key))
