"""Exact resume: N steps in one go == N/2 steps + `--ckpt_path last` + N/2 steps (losses, weights, EMA, data)."""

from __future__ import annotations

import pytest
import torch
from pytorch_lightning.callbacks import Callback
from lit_helpers import tiny_cli_args

from vidiff.lit.cli import run_lightning_cli


class Recorder(Callback):
    """Per training step: the loss and the indices of the videos in the batch."""

    def __init__(self) -> None:
        self.losses: dict[int, float] = {}
        self.indices: dict[int, list[int]] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step  # already incremented: the step just taken
        self.losses[step] = float(outputs["loss"])
        self.indices[step] = batch["index"].tolist()


def _fit(root, max_steps: int, ckpt_path: str | None = None):
    # 10 train videos / batch 2 = 5 batches per epoch: the split at step 4 is mid-epoch and the run crosses epochs
    cli = run_lightning_cli(tiny_cli_args(root, max_steps=max_steps, val_every=2), run=False)
    recorder = Recorder()
    cli.trainer.callbacks.append(recorder)
    cli.trainer.fit(cli.model, cli.datamodule, ckpt_path=ckpt_path)
    return cli.model, recorder


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path):
    full, rec_full = _fit(tmp_path / "full", max_steps=8)
    _, rec_a = _fit(tmp_path / "split", max_steps=4)
    resumed, rec_b = _fit(tmp_path / "split", max_steps=8, ckpt_path="last")

    assert sorted(rec_a.losses) == [1, 2, 3, 4] and sorted(rec_b.losses) == [5, 6, 7, 8]
    assert {
        **rec_a.indices,
        **rec_b.indices,
    } == rec_full.indices  # same data order, across the epoch boundary
    split_losses = {**rec_a.losses, **rec_b.losses}
    for step, loss in rec_full.losses.items():
        assert split_losses[step] == pytest.approx(loss, rel=1e-6, abs=1e-7), f"step {step}"
    full_state, resumed_state = full.state_dict(), resumed.state_dict()
    assert full_state.keys() == resumed_state.keys()
    assert any(k.startswith("ema.shadow.") for k in full_state)
    for key, value in full_state.items():
        torch.testing.assert_close(resumed_state[key], value, rtol=1e-6, atol=1e-6, msg=key)
    assert int(resumed.ema.num_updates) == int(full.ema.num_updates) == 8
