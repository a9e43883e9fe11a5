"""A NaN loss stops the run at once (or skips the step); weights, EMA and the last good checkpoint stay intact."""

from __future__ import annotations

import pytest
import torch
from test_lit_helpers import tiny_cli_args

from vidiff.lit import load_model
from vidiff.lit.cli import run_lightning_cli

BAD_STEP = 3  # the 4th training step (global_step 3) gets a NaN loss; checkpoints were written at step 2


def _cli_with_nan(root, policy: str):
    cli = run_lightning_cli(
        [*tiny_cli_args(root, max_steps=5, val_every=2), "--model.init_args.on_nonfinite", policy], run=False
    )
    model = cli.model
    original = model.loss

    def loss(batch, net, *args, **kwargs):
        value = original(batch, net, *args, **kwargs)
        if model.training and model.global_step == BAD_STEP:
            return value * float("nan")
        return value

    model.loss = loss
    return cli


def _all_finite(module: torch.nn.Module) -> bool:
    return all(torch.isfinite(t).all() for t in module.state_dict().values() if t.is_floating_point())


def test_nan_loss_stops_the_run_and_keeps_the_last_checkpoint(tmp_path):
    cli = _cli_with_nan(tmp_path, "error")
    with pytest.raises(FloatingPointError, match=f"non-finite training loss .* global step {BAD_STEP}"):
        cli.trainer.fit(cli.model, cli.datamodule)
    assert cli.trainer.global_step == BAD_STEP  # stopped within the bad step: no optimizer step taken
    assert _all_finite(cli.model) and int(cli.model.ema.num_updates) == BAD_STEP
    last = tmp_path / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())
    assert int(load_model(last).ema.num_updates) == 2


def test_nan_loss_skip_policy_skips_the_step(tmp_path):
    cli = _cli_with_nan(tmp_path, "skip")
    cli.trainer.fit(cli.model, cli.datamodule)
    assert cli.trainer.global_step == 5
    assert _all_finite(cli.model)
    assert int(cli.model.ema.num_updates) == 4  # the skipped step does not update the EMA
