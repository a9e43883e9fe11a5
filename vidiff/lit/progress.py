"""Training progress bars counted in optimizer steps over the whole run (``step 340/1200``).

Lightning's bars count batches per epoch; vidiff's runs are bounded by ``max_steps`` over one endless epoch, where
they read "Epoch 0/-2" with no meaningful total. With ``max_steps`` set these bars show ``global_step /
max_steps`` (from the resumed step on ``--ckpt_path last``); without it they behave as Lightning's. The CLI swaps
Lightning's default bar (Rich when installed, else tqdm) for the matching one here.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import RichProgressBar, TQDMProgressBar


def _by_steps(trainer: pl.Trainer) -> bool:
    return trainer.max_steps is not None and trainer.max_steps > 0


class StepRichProgressBar(RichProgressBar):
    """:class:`RichProgressBar` over ``trainer.max_steps`` optimizer steps when that is set."""

    @property
    def total_train_batches(self) -> int | float:
        return self.trainer.max_steps if _by_steps(self.trainer) else super().total_train_batches

    def _get_train_description(self, current_epoch: int) -> str:
        if not _by_steps(self.trainer):
            return super()._get_train_description(current_epoch)
        return f"{'step':{len(self.validation_description)}}"

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not _by_steps(trainer):
            return super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if not self.is_disabled and self.train_progress_bar_id is None:
            self._initialize_train_progress_bar_id()
        self._update(self.train_progress_bar_id, trainer.global_step)
        self._update_metrics(trainer, pl_module)
        self.refresh()


class StepTQDMProgressBar(TQDMProgressBar):
    """:class:`TQDMProgressBar` over ``trainer.max_steps`` optimizer steps when that is set."""

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if not _by_steps(trainer):
            return super().on_train_epoch_start(trainer, *args)
        bar = self.train_progress_bar
        if bar.total != trainer.max_steps:  # the run's (or a resumed run's) first epoch
            bar.reset(total=trainer.max_steps)
            bar.initial = bar.n = trainer.global_step
        bar.set_description("step")

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not _by_steps(trainer):
            return super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        bar, n = self.train_progress_bar, trainer.global_step
        if bar is not None and not bar.disable and self._should_update(n, bar.total):
            bar.n = n
            bar.set_postfix(self.get_metrics(trainer, pl_module))
            bar.refresh()


def step_progress_bar(default: pl.Callback) -> pl.Callback:
    """The step-counting bar matching Lightning's default bar ``default`` (returned unchanged if customised)."""
    if type(default) is RichProgressBar:
        return StepRichProgressBar(theme=default.theme, leave=default._leave)
    if type(default) is TQDMProgressBar:
        return StepTQDMProgressBar(default.refresh_rate, default.process_position)
    return default
