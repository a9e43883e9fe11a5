"""`last.ckpt` is the last: rewritten at every validation and at the end of fit, even when val/loss gets worse."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from vidiff.lit.checkpoint import AtomicCheckpointIO, RunCheckpoint


class _Worsening(pl.LightningModule):
    """A linear model whose logged val/loss grows with every validation (so only the first one is 'best')."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", float(self.global_step), on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(64, 2)), batch_size=2)


def _fit(tmp_path, max_steps: int, val_every: int) -> RunCheckpoint:
    ckpt = RunCheckpoint()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_steps=max_steps,
        val_check_interval=val_every,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        callbacks=[ckpt],
        plugins=[AtomicCheckpointIO()],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(_Worsening(), _loader(), _loader())
    return ckpt


def _step(path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


def test_last_checkpoint_follows_every_validation_when_val_loss_worsens(tmp_path):
    ckpt = _fit(tmp_path, max_steps=30, val_every=10)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert _step(last) == 30  # val/loss was best at step 10 only
    assert _step(ckpt.best_model_path) == 10
    assert ckpt.last_model_path == str(last)
    assert sorted(p.name for p in last.parent.iterdir()) == ["best-000010.ckpt", "last.ckpt"]


def test_last_checkpoint_written_at_the_end_of_fit_between_validations(tmp_path):
    _fit(tmp_path, max_steps=25, val_every=10)
    assert _step(tmp_path / "checkpoints" / "last.ckpt") == 25
